//! Alerts: the state machine of alerting rules (`state`, pure) and the rule manager
//! (`manager`), the one owner of rule groups and their alert state.

pub mod dispatch;
pub mod manager;
pub mod state;
