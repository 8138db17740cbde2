//! Alertmanager's routing tree (`dispatch/route.go` of Alertmanager 0.25): which routes an
//! alert goes to, with which receiver and grouping, and the keys that name routes and
//! aggregation groups.
//!
//! `amconfig` parses the `route` block into a [`RouteSpec`] (the settings as written) and
//! builds a [`RouteTree`], whose nodes carry their effective [`RouteOpts`]: `receiver`,
//! `group_by`, `group_wait` (30 s), `group_interval` (5 min) and `repeat_interval` (4 h) are
//! inherited from the parent unless set; `mute_time_intervals` and `active_time_intervals` are
//! not inherited (Alertmanager 0.25 copies them from the node's own config only); `continue`
//! is per node. [`RouteTree::matching_routes`] is Alertmanager's `Route.Match`: depth-first,
//! children in order, stopping at the first matching child unless it has `continue: true`,
//! and the node itself when no child matched.
//!
//! Each node has Alertmanager 0.25's `Route.Key()` (`{}/{severity="page"}`), which is what
//! group keys are made of (`{}/{severity="page"}:{alertname="HighCPU"}`, the `groupKey` of
//! webhook payloads), and the unique `Route.ID()` of later Alertmanager versions, which adds
//! the child's index (`{}/{severity="page"}/0`) so that two siblings with the same matchers
//! stay apart. Called by the dispatcher with each alert's labels; pure.

use std::collections::BTreeSet;
use std::time::Duration;

use super::matcher::{DisplayMatchers, Matcher, matches_all};
use crate::notify::LabelSet;

/// Alertmanager's defaults for the root route.
pub const DEFAULT_GROUP_WAIT: Duration = Duration::from_secs(30);
pub const DEFAULT_GROUP_INTERVAL: Duration = Duration::from_secs(5 * 60);
pub const DEFAULT_REPEAT_INTERVAL: Duration = Duration::from_secs(4 * 3600);

/// `group_by` as written on one route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    /// `['...']`: group by every label.
    All,
    /// Named labels (at least one).
    Labels(Vec<String>),
}

/// One route as written in the configuration, already validated by `amconfig`: matchers from
/// `match`, `match_re` and `matchers` together, sorted as Alertmanager sorts them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouteSpec {
    pub receiver: Option<String>,
    /// `None` inherits the parent's grouping (an empty `group_by: []` inherits too, as in
    /// Alertmanager).
    pub group_by: Option<GroupBy>,
    pub matchers: Vec<Matcher>,
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    pub continue_matching: bool,
    pub group_wait: Option<Duration>,
    pub group_interval: Option<Duration>,
    pub repeat_interval: Option<Duration>,
    pub routes: Vec<RouteSpec>,
}

/// The effective settings of a route (Alertmanager's `RouteOpts`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteOpts {
    pub receiver: String,
    /// Labels to group by; ignored when `group_by_all`.
    pub group_by: BTreeSet<String>,
    /// `group_by: ['...']`: every label of the alert.
    pub group_by_all: bool,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    /// Names of time intervals during which the route sends nothing.
    pub mute_time_intervals: Vec<String>,
    /// Names of time intervals outside of which the route sends nothing (none: always).
    pub active_time_intervals: Vec<String>,
}

impl Default for RouteOpts {
    fn default() -> Self {
        RouteOpts {
            receiver: String::new(),
            group_by: BTreeSet::new(),
            group_by_all: false,
            group_wait: DEFAULT_GROUP_WAIT,
            group_interval: DEFAULT_GROUP_INTERVAL,
            repeat_interval: DEFAULT_REPEAT_INTERVAL,
            mute_time_intervals: Vec::new(),
            active_time_intervals: Vec::new(),
        }
    }
}

impl RouteOpts {
    /// The labels of an alert that name its aggregation group on this route
    /// (Alertmanager's `getGroupLabels`): those in `group_by`, or all with `...`. Labels in
    /// `group_by` that the alert lacks are left out.
    pub fn group_labels(&self, labels: &LabelSet) -> LabelSet {
        labels
            .iter()
            .filter(|(name, _)| self.group_by_all || self.group_by.contains(*name))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteNode {
    /// The node's index in [`RouteTree::nodes`] (depth-first, parents first, as
    /// Alertmanager's `Route.Walk` visits them); the root is 0.
    pub index: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// The node's position among its parent's children (0 for the root).
    pub sibling_index: usize,
    /// Alertmanager 0.25's `Route.Key()`: the parent's key, `/`, and this node's matchers
    /// (`{}` for the root). Not unique: siblings with the same matchers share it, and so do
    /// their aggregation groups, as in Alertmanager 0.25.
    pub key: String,
    /// Later Alertmanager's `Route.ID()`: like the key, plus `/index` after each non-root
    /// node's matchers. Unique in the tree.
    pub id: String,
    pub matchers: Vec<Matcher>,
    pub continue_matching: bool,
    pub opts: RouteOpts,
}

impl RouteNode {
    /// The aggregation group key of an alert on this route:
    /// `{route key}:{group labels}`, e.g. `{}:{alertname="HighCPU", instance="host1:9100"}`.
    pub fn group_key(&self, labels: &LabelSet) -> String {
        group_key(&self.key, &self.opts.group_labels(labels))
    }
}

/// The routing tree; the root is `nodes[0]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteTree {
    nodes: Vec<RouteNode>,
}

impl RouteTree {
    /// Builds the tree from the root's spec (Alertmanager's `NewRoute`), resolving inherited
    /// settings.
    pub fn new(root: &RouteSpec) -> RouteTree {
        let mut tree = RouteTree { nodes: Vec::new() };
        tree.add(root, None, 0);
        tree
    }

    fn add(&mut self, spec: &RouteSpec, parent: Option<usize>, sibling_index: usize) -> usize {
        let (mut opts, parent_key, parent_id) = match parent.and_then(|p| self.nodes.get(p)) {
            Some(p) => (p.opts.clone(), Some(p.key.clone()), Some(p.id.clone())),
            None => (RouteOpts::default(), None, None),
        };
        if let Some(r) = &spec.receiver
            && !r.is_empty()
        {
            opts.receiver = r.clone();
        }
        match &spec.group_by {
            Some(GroupBy::Labels(names)) => {
                opts.group_by = names.iter().cloned().collect();
                opts.group_by_all = false;
            }
            // `...` keeps the parent's label list (unused while `group_by_all` holds), as
            // Alertmanager does.
            Some(GroupBy::All) => opts.group_by_all = true,
            None => {}
        }
        if let Some(d) = spec.group_wait {
            opts.group_wait = d;
        }
        if let Some(d) = spec.group_interval {
            opts.group_interval = d;
        }
        if let Some(d) = spec.repeat_interval {
            opts.repeat_interval = d;
        }
        opts.mute_time_intervals = spec.mute_time_intervals.clone();
        opts.active_time_intervals = spec.active_time_intervals.clone();
        let mut matchers = spec.matchers.clone();
        matchers.sort();
        let shown = DisplayMatchers(&matchers).to_string();
        let (key, id) = match (parent_key, parent_id) {
            (Some(pk), Some(pid)) => (
                format!("{pk}/{shown}"),
                format!("{pid}/{shown}/{sibling_index}"),
            ),
            _ => (shown.clone(), shown),
        };
        let index = self.nodes.len();
        self.nodes.push(RouteNode {
            index,
            parent,
            children: Vec::new(),
            sibling_index,
            key,
            id,
            matchers,
            continue_matching: spec.continue_matching,
            opts,
        });
        for (i, child) in spec.routes.iter().enumerate() {
            let c = self.add(child, Some(index), i);
            if let Some(node) = self.nodes.get_mut(index) {
                node.children.push(c);
            }
        }
        index
    }

    /// The root route.
    pub fn root(&self) -> &RouteNode {
        // `new` always pushes the root first.
        &self.nodes[0]
    }

    /// Every node, depth-first, parents before children.
    pub fn nodes(&self) -> &[RouteNode] {
        &self.nodes
    }

    pub fn get(&self, index: usize) -> Option<&RouteNode> {
        self.nodes.get(index)
    }

    /// The node with this `id` (unique), if any.
    pub fn by_id(&self, id: &str) -> Option<&RouteNode> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// The routes that take an alert with these labels, in tree order: Alertmanager's
    /// `Route.Match` from the root. Never empty, since the root has no matchers.
    /// Whether any route matches on the label `name` (e.g. whether the operator routes
    /// incident announcements, which carry `redline_incident`).
    pub fn routes_on_label(&self, name: &str) -> bool {
        self.nodes
            .iter()
            .any(|n| n.matchers.iter().any(|m| m.name == name))
    }

    pub fn matching_routes(&self, labels: &LabelSet) -> Vec<&RouteNode> {
        let mut out = Vec::new();
        self.match_node(0, labels, &mut out);
        out
    }

    /// Appends the matches under `index` to `out`; returns whether the node matched at all.
    fn match_node<'a>(
        &'a self,
        index: usize,
        labels: &LabelSet,
        out: &mut Vec<&'a RouteNode>,
    ) -> bool {
        let Some(node) = self.nodes.get(index) else {
            return false;
        };
        if !matches_all(&node.matchers, labels) {
            return false;
        }
        let before = out.len();
        for &child in &node.children {
            let matched = self.match_node(child, labels, out);
            let continues = self.nodes.get(child).is_some_and(|c| c.continue_matching);
            if matched && !continues {
                break;
            }
        }
        if out.len() == before {
            out.push(node);
        }
        true
    }

    /// The receivers an alert goes to, in order (what `amtool config routes test` prints,
    /// joined by commas).
    pub fn receivers(&self, labels: &LabelSet) -> Vec<&str> {
        self.matching_routes(labels)
            .into_iter()
            .map(|n| n.opts.receiver.as_str())
            .collect()
    }
}

/// `{route key}:{group labels}` as Alertmanager's `aggrGroup.GroupKey` prints it.
pub fn group_key(route_key: &str, group_labels: &LabelSet) -> String {
    format!("{route_key}:{}", format_label_set(group_labels))
}

/// A label set as Prometheus' `model.LabelSet.String()` prints it: `{a="1", b="2"}`, each
/// pair formatted with Go's `%q` and the pairs sorted as strings (so `a0="x"` sorts before
/// `a="y"`, unlike sorting by name).
pub fn format_label_set(labels: &LabelSet) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    pairs.sort();
    format!("{{{}}}", pairs.join(", "))
}

/// Go's `strconv.Quote`: `"` and `\` escaped, the usual short escapes, other non-printable
/// characters as `\xNN`, `\uNNNN` or `\UNNNNNNNN`. "Printable" follows Go's `unicode.IsPrint`
/// for everything label values plausibly hold (controls, non-ASCII spaces and the common
/// format characters are escaped; other letters, marks, digits, punctuation and symbols are
/// kept).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let u = c as u32;
    // Format characters (Cf), private use and non-characters, which Go does not print.
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB
        | 0xE000..=0xF8FF | 0xFDD0..=0xFDEF | 0xFFFE | 0xFFFF | 0xF0000.. )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::alert::matcher::{MatchType, parse_matchers};
    use crate::notify::test_labels as labels;

    fn spec(receiver: &str, matchers: &str) -> RouteSpec {
        RouteSpec {
            receiver: (!receiver.is_empty()).then(|| receiver.to_owned()),
            matchers: parse_matchers(matchers).unwrap(),
            ..RouteSpec::default()
        }
    }

    /// The tree of Alertmanager's `dispatch/route_test.go` `TestRouteMatch`, abridged.
    fn tree() -> RouteTree {
        let mut root = RouteSpec {
            receiver: Some("notify-def".into()),
            group_by: Some(GroupBy::Labels(vec!["alertname".into()])),
            ..RouteSpec::default()
        };
        let mut owner_x = spec("notify-A", "owner=team-A");
        owner_x.routes = vec![RouteSpec {
            group_wait: Some(Duration::from_secs(2 * 60)),
            ..spec("notify-productionA", "env=production")
        }];
        let mut owner_b = spec("notify-B", "owner=team-B");
        owner_b.group_by = Some(GroupBy::Labels(vec!["foo".into(), "bar".into()]));
        let mut owner_c = spec("notify-C", "owner=team-C");
        owner_c.continue_matching = true;
        owner_c.routes = vec![spec("", "env=testing")];
        let mut re = spec("notify-BC", r#"owner=~"team-(B|C)""#);
        re.group_by = Some(GroupBy::All);
        re.repeat_interval = Some(Duration::from_secs(3600));
        let mut group_all_child = spec("", "env=\"all\"");
        group_all_child.group_by = Some(GroupBy::Labels(vec!["x".into()]));
        re.routes = vec![group_all_child];
        root.routes = vec![owner_x, owner_b, owner_c, re];
        RouteTree::new(&root)
    }

    fn matched(tree: &RouteTree, ls: &[(&str, &str)]) -> Vec<(String, String)> {
        tree.matching_routes(&labels(ls))
            .into_iter()
            .map(|n| (n.opts.receiver.clone(), n.key.clone()))
            .collect()
    }

    #[test]
    fn match_is_depth_first_and_falls_back_to_the_parent() {
        let t = tree();
        assert_eq!(
            matched(&t, &[("owner", "team-A")]),
            vec![("notify-A".into(), r#"{}/{owner="team-A"}"#.into())]
        );
        assert_eq!(
            matched(&t, &[("owner", "team-A"), ("env", "production")]),
            vec![(
                "notify-productionA".into(),
                r#"{}/{owner="team-A"}/{env="production"}"#.into()
            )]
        );
        // team-B stops at the first match; `notify-BC` is not reached.
        assert_eq!(
            matched(&t, &[("owner", "team-B")]),
            vec![("notify-B".into(), r#"{}/{owner="team-B"}"#.into())]
        );
        // team-C continues to the next sibling.
        assert_eq!(
            matched(&t, &[("owner", "team-C")]),
            vec![
                ("notify-C".into(), r#"{}/{owner="team-C"}"#.into()),
                ("notify-BC".into(), r#"{}/{owner=~"team-(B|C)"}"#.into())
            ]
        );
        // A child without a receiver inherits its parent's.
        assert_eq!(
            matched(&t, &[("owner", "team-C"), ("env", "testing")]),
            vec![
                (
                    "notify-C".into(),
                    r#"{}/{owner="team-C"}/{env="testing"}"#.into()
                ),
                ("notify-BC".into(), r#"{}/{owner=~"team-(B|C)"}"#.into())
            ]
        );
        // Nothing matches: the root.
        assert_eq!(
            matched(&t, &[("owner", "nobody")]),
            vec![("notify-def".into(), "{}".into())]
        );
        assert_eq!(t.receivers(&labels(&[])), vec!["notify-def"]);
    }

    #[test]
    fn options_are_inherited_except_time_intervals() {
        let mut root = spec("r", "");
        root.group_by = Some(GroupBy::Labels(vec!["alertname".into()]));
        root.group_wait = Some(Duration::from_secs(10));
        let mut child = spec("", "a=1");
        child.mute_time_intervals = vec!["nights".into()];
        child.group_interval = Some(Duration::from_secs(60));
        child.routes = vec![spec("", "b=2")];
        root.routes = vec![child];
        let t = RouteTree::new(&root);
        let grandchild = &t.nodes()[2];
        assert_eq!(grandchild.opts.receiver, "r");
        assert_eq!(
            grandchild.opts.group_by,
            BTreeSet::from(["alertname".to_owned()])
        );
        assert_eq!(grandchild.opts.group_wait, Duration::from_secs(10));
        assert_eq!(grandchild.opts.group_interval, Duration::from_secs(60));
        assert_eq!(grandchild.opts.repeat_interval, DEFAULT_REPEAT_INTERVAL);
        assert_eq!(t.nodes()[1].opts.mute_time_intervals, vec!["nights"]);
        assert!(grandchild.opts.mute_time_intervals.is_empty());
        assert_eq!(t.root().opts.group_wait, Duration::from_secs(10));
        assert_eq!(t.nodes()[1].parent, Some(0));
        assert_eq!(t.root().children, vec![1]);
    }

    #[test]
    fn group_by_all_and_back() {
        let t = tree();
        let bc = t
            .nodes()
            .iter()
            .find(|n| {
                n.opts.receiver == "notify-BC" && n.matchers.len() == 1 && n.parent == Some(0)
            })
            .unwrap();
        assert!(bc.opts.group_by_all);
        assert_eq!(bc.opts.repeat_interval, Duration::from_secs(3600));
        let ls = labels(&[("owner", "team-C"), ("zone", "eu")]);
        assert_eq!(bc.opts.group_labels(&ls), ls);
        let child = t.get(bc.children[0]).unwrap();
        assert!(!child.opts.group_by_all);
        assert_eq!(
            child.opts.group_labels(&labels(&[("x", "1"), ("y", "2")])),
            labels(&[("x", "1")])
        );
        // An empty `group_by` inherits (None here), like Alertmanager's nil list.
        let root = t.root();
        assert_eq!(
            root.opts
                .group_labels(&labels(&[("alertname", "A"), ("job", "j")])),
            labels(&[("alertname", "A")])
        );
    }

    #[test]
    fn group_keys_as_alertmanager_prints_them() {
        let mut root = spec("webhook", "");
        root.group_by = Some(GroupBy::Labels(vec!["alertname".into(), "instance".into()]));
        let t = RouteTree::new(&root);
        let alert = labels(&[
            ("alertname", "HighCPU"),
            ("instance", "host1:9100"),
            ("job", "node"),
            ("severity", "warning"),
        ]);
        // The `groupKey` of /work/shared/fixtures/alertmanager_webhook_example.json.
        assert_eq!(
            t.root().group_key(&alert),
            r#"{}:{alertname="HighCPU", instance="host1:9100"}"#
        );
        // Sorted as strings, not by name; values quoted as Go's %q.
        assert_eq!(
            format_label_set(&labels(&[("a", "y"), ("a0", "x\n\"é\u{7f}")])),
            r#"{a0="x\n\"é\x7f", a="y"}"#
        );
        assert_eq!(format_label_set(&labels(&[])), "{}");
        assert_eq!(
            go_quote("\u{a0}\u{200b}\u{1F600}\t"),
            r#""\u00a0\u200b😀\t""#
        );
    }

    #[test]
    fn keys_and_ids() {
        let mut root = spec("r", "");
        let mut a = spec("", r#"{b="2", a=~"1"}"#);
        a.routes = vec![spec("", "c!=3")];
        // Two siblings with the same matchers share a key but not an id.
        root.routes = vec![a, spec("", "x=1"), spec("", "x=1")];
        let t = RouteTree::new(&root);
        let keys: Vec<&str> = t.nodes().iter().map(|n| n.key.as_str()).collect();
        assert_eq!(
            keys,
            vec![
                "{}",
                r#"{}/{a=~"1",b="2"}"#,
                r#"{}/{a=~"1",b="2"}/{c!="3"}"#,
                r#"{}/{x="1"}"#,
                r#"{}/{x="1"}"#,
            ]
        );
        let ids: Vec<&str> = t.nodes().iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![
                "{}",
                r#"{}/{a=~"1",b="2"}/0"#,
                r#"{}/{a=~"1",b="2"}/0/{c!="3"}/0"#,
                r#"{}/{x="1"}/1"#,
                r#"{}/{x="1"}/2"#,
            ]
        );
        assert_eq!(t.by_id(r#"{}/{x="1"}/2"#).map(|n| n.index), Some(4));
        assert_eq!(t.nodes()[1].matchers[0].op, MatchType::Regexp);
    }

    #[test]
    fn continue_on_a_nested_route_only_affects_its_siblings() {
        let mut root = spec("root", "");
        let mut parent = spec("p", "team=a");
        let mut c1 = spec("c1", "sev=page");
        c1.continue_matching = true;
        parent.routes = vec![c1, spec("c2", "sev=~\"page|warn\"")];
        root.routes = vec![parent, spec("other", "team=~\".+\"")];
        let t = RouteTree::new(&root);
        assert_eq!(
            t.receivers(&labels(&[("team", "a"), ("sev", "page")])),
            vec!["c1", "c2"]
        );
        assert_eq!(
            t.receivers(&labels(&[("team", "a"), ("sev", "info")])),
            vec!["p"]
        );
        assert_eq!(t.receivers(&labels(&[("team", "b")])), vec!["other"]);
    }
}
