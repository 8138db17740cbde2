//! Alerts: the state machine of alerting rules (`state`, pure) and the rule manager
//! (`manager`), the one owner of rule groups and their alert state.

pub mod amconfig;
pub mod dispatch;
pub mod dispatcher;
pub mod inhibit;
pub mod manager;
pub mod matcher;
pub mod route;
pub mod silence;
pub mod silence_cli;
pub mod state;
pub mod timeinterval;
