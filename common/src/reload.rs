//! The report of a configuration reload: which settings changed and were applied, which
//! changed but keep their running value until a restart. Each program decides which of its
//! settings are which (`reload.rs` in the agent and the collector) with [`compare!`].

/// The settings a reload found changed, by their names in the configuration file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Applied by the reload.
    pub applied: Vec<&'static str>,
    /// Changed in the file, but in force only after a restart; the running values stay.
    pub restart_required: Vec<&'static str>,
}

/// `[(name, changed)]`: for each named setting, whether the expression differs between the
/// configurations `$a` and `$b` (the expression reads the setting from `$c`).
///
/// ```
/// struct Config { port: u16, path: String }
/// let (a, b) = (Config { port: 1, path: "x".into() }, Config { port: 2, path: "x".into() });
/// let table = redline_common::compare!(&a, &b;
///     "port" => |c| c.port,
///     "path" => |c| &c.path,
/// );
/// assert_eq!(redline_common::reload::changed(table), vec!["port"]);
/// ```
#[macro_export]
macro_rules! compare {
    ($a:expr, $b:expr; $($name:literal => |$c:ident| $e:expr),* $(,)?) => {
        [$(($name, { let $c = $a; $e } != { let $c = $b; $e })),*]
    };
}

/// The names whose setting changed, in table order.
pub fn changed<const N: usize>(table: [(&'static str, bool); N]) -> Vec<&'static str> {
    table
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
}
