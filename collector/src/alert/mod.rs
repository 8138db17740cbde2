//! Alerts: the state machine of alerting rules (`state`, pure). The owner task that evaluates
//! rule groups, persists alert state and hands transitions on arrives with the rules work.

pub mod state;
