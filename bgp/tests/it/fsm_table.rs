//! The (state, input) table: for every starting situation and every input, the expected
//! next state, ConnectRetryCounter and outputs. The test fails on any pair without a row,
//! so no transition is left unspecified.
//!
//! Starting situations are the six states, plus variants that differ in running timers:
//! Idle with a pending automatic restart, Connect and Active with the DelayOpenTimer
//! running, and Active with the ConnectRetryTimer running (a non-passive run).

use crate::fsm_support;

use std::collections::BTreeMap;

use bgp::fsm::{Fsm, Input, InputKind, State, Timer};
use fsm_support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Setup {
    Idle,
    IdleHold,
    Connect,
    ConnectDelay,
    Active,
    ActiveRetry,
    ActiveDelay,
    OpenSent,
    OpenConfirm,
    Established,
}

const SETUPS: [Setup; 10] = [
    Setup::Idle,
    Setup::IdleHold,
    Setup::Connect,
    Setup::ConnectDelay,
    Setup::Active,
    Setup::ActiveRetry,
    Setup::ActiveDelay,
    Setup::OpenSent,
    Setup::OpenConfirm,
    Setup::Established,
];

/// Builds the FSM for a setup and checks it is where the table assumes.
fn setup(s: Setup) -> Fsm {
    use Input::*;
    let (c, script): (_, Vec<Input>) = match s {
        Setup::Idle => (cfg(), vec![]),
        Setup::IdleHold => (
            cfg(),
            vec![ManualStart, TcpCrAcked, TimerExpired(Timer::Hold)],
        ),
        Setup::Connect => (cfg(), vec![ManualStart]),
        Setup::ConnectDelay => (cfg_delay_open(), vec![ManualStart, TcpCrAcked]),
        Setup::Active => (cfg(), vec![ManualStartPassive]),
        Setup::ActiveRetry => (cfg(), vec![ManualStart, TcpCrAcked, TcpConnectionFails]),
        Setup::ActiveDelay => (
            cfg_delay_open(),
            vec![ManualStartPassive, TcpConnectionConfirmed],
        ),
        Setup::OpenSent => (cfg(), vec![ManualStart, TcpCrAcked]),
        Setup::OpenConfirm => (cfg(), vec![ManualStart, TcpCrAcked, open(90)]),
        Setup::Established => (cfg(), vec![ManualStart, TcpCrAcked, open(90), KeepAliveMsg]),
    };
    let mut f = fsm(c);
    feed(&mut f, script);
    let (state, timers): (State, &[Timer]) = match s {
        Setup::Idle => (State::Idle, &[]),
        Setup::IdleHold => (State::Idle, &[Timer::IdleHold]),
        Setup::Connect => (State::Connect, &[Timer::ConnectRetry]),
        Setup::ConnectDelay => (State::Connect, &[Timer::DelayOpen]),
        Setup::Active => (State::Active, &[]),
        Setup::ActiveRetry => (State::Active, &[Timer::ConnectRetry]),
        Setup::ActiveDelay => (State::Active, &[Timer::DelayOpen]),
        Setup::OpenSent => (State::OpenSent, &[Timer::Hold]),
        Setup::OpenConfirm => (State::OpenConfirm, &[Timer::Hold, Timer::Keepalive]),
        Setup::Established => (
            State::Established,
            &[Timer::Hold, Timer::Keepalive, Timer::DampingReset],
        ),
    };
    assert_eq!(f.state(), state, "setup {s:?}");
    assert_eq!(
        f.running_timers().collect::<Vec<_>>(),
        timers,
        "setup {s:?}"
    );
    f
}

/// The sample inputs, by label. Every [`InputKind`] has at least one (see
/// [`label_of_kind`]).
fn samples() -> Vec<(&'static str, Input)> {
    use Input::*;
    vec![
        ("ManualStart", ManualStart),
        ("ManualStartPassive", ManualStartPassive),
        ("AutomaticStart", AutomaticStart),
        ("AutomaticStartPassive", AutomaticStartPassive),
        ("ManualStop", ManualStop),
        ("AutomaticStop", AutomaticStop { cease_subcode: 1 }),
        ("ConnectRetryExp", TimerExpired(Timer::ConnectRetry)),
        ("HoldExp", TimerExpired(Timer::Hold)),
        ("KeepaliveExp", TimerExpired(Timer::Keepalive)),
        ("DelayOpenExp", TimerExpired(Timer::DelayOpen)),
        ("IdleHoldExp", TimerExpired(Timer::IdleHold)),
        ("DampingResetExp", TimerExpired(Timer::DampingReset)),
        ("TcpCrAcked", TcpCrAcked),
        ("TcpConfirmed", TcpConnectionConfirmed),
        ("TcpFails", TcpConnectionFails),
        ("Open", open(90)),
        ("BadOpen", {
            let mut o = peer_open(90);
            o.version = 3;
            BgpOpen(o)
        }),
        ("HeaderErr", BgpHeaderErr(notif(1, 2))),
        ("OpenMsgErr", BgpOpenMsgErr(notif(2, 4))),
        ("CollisionDump", OpenCollisionDump),
        ("Notif", NotifMsg(notif(6, 2))),
        ("NotifVerErr", NotifMsg(notif(2, 1))),
        ("Keepalive", KeepAliveMsg),
        ("Update", UpdateMsg),
        ("UpdateErr", UpdateMsgErr(notif(3, 1))),
    ]
}

/// The sample label that stands for each input kind. Exhaustive, so that a new input
/// kind cannot be added without a sample (and hence without table rows).
fn label_of_kind(k: InputKind) -> &'static str {
    match k {
        InputKind::ManualStart => "ManualStart",
        InputKind::ManualStartPassive => "ManualStartPassive",
        InputKind::AutomaticStart => "AutomaticStart",
        InputKind::AutomaticStartPassive => "AutomaticStartPassive",
        InputKind::ManualStop => "ManualStop",
        InputKind::AutomaticStop => "AutomaticStop",
        InputKind::TimerExpired(Timer::ConnectRetry) => "ConnectRetryExp",
        InputKind::TimerExpired(Timer::Hold) => "HoldExp",
        InputKind::TimerExpired(Timer::Keepalive) => "KeepaliveExp",
        InputKind::TimerExpired(Timer::DelayOpen) => "DelayOpenExp",
        InputKind::TimerExpired(Timer::IdleHold) => "IdleHoldExp",
        InputKind::TimerExpired(Timer::DampingReset) => "DampingResetExp",
        InputKind::TcpCrAcked => "TcpCrAcked",
        InputKind::TcpConnectionConfirmed => "TcpConfirmed",
        InputKind::TcpConnectionFails => "TcpFails",
        InputKind::BgpOpen => "Open",
        InputKind::BgpHeaderErr => "HeaderErr",
        InputKind::BgpOpenMsgErr => "OpenMsgErr",
        InputKind::OpenCollisionDump => "CollisionDump",
        InputKind::NotifMsgVerErr => "NotifVerErr",
        InputKind::NotifMsg => "Notif",
        InputKind::KeepAliveMsg => "Keepalive",
        InputKind::UpdateMsg => "Update",
        InputKind::UpdateMsgErr => "UpdateErr",
    }
}

type Row = (Setup, &'static str, State, u32, &'static [&'static str]);

// Shared output sequences.
const NONE: &[&str] = &[];
const TO_CONNECT: &[&str] = &["start ConnectRetry 120", "connect", "->Connect"];
const TO_OPEN_SENT: &[&str] = &["open", "start Hold 240", "->OpenSent"];
const RETRY_TO_OPEN_SENT: &[&str] = &["stop ConnectRetry", "open", "start Hold 240", "->OpenSent"];
const DELAYED_OPEN_ACCEPTED: &[&str] = &[
    "stop DelayOpen",
    "open",
    "keepalive",
    "start Keepalive 30",
    "start Hold 90",
    "->OpenConfirm",
];
// To Idle from Connect/Active with the given running timer, automatic restart armed.
const IDLE: &[&str] = &["drop", "release", "->Idle", "start IdleHold 5"];
const RETRY_IDLE: &[&str] = &[
    "stop ConnectRetry",
    "drop",
    "release",
    "->Idle",
    "start IdleHold 5",
];
const DELAY_IDLE: &[&str] = &[
    "stop DelayOpen",
    "drop",
    "release",
    "->Idle",
    "start IdleHold 5",
];
// To Idle from OpenSent.
const SENT_IDLE: &[&str] = &["stop Hold", "drop", "release", "->Idle", "start IdleHold 5"];
const fn sent_idle_with(n: &'static str) -> [&'static str; 6] {
    [
        n,
        "stop Hold",
        "drop",
        "release",
        "->Idle",
        "start IdleHold 5",
    ]
}
const SENT_FSM_ERR: &[&str] = &sent_idle_with("notify 5/1");
// To Idle from OpenConfirm.
const CONF_IDLE: &[&str] = &[
    "stop Hold",
    "stop Keepalive",
    "drop",
    "release",
    "->Idle",
    "start IdleHold 5",
];
const fn conf_idle_with(n: &'static str) -> [&'static str; 7] {
    [
        n,
        "stop Hold",
        "stop Keepalive",
        "drop",
        "release",
        "->Idle",
        "start IdleHold 5",
    ]
}
const CONF_FSM_ERR: &[&str] = &conf_idle_with("notify 5/2");
// To Idle from Established.
const EST_IDLE: &[&str] = &[
    "stop Hold",
    "stop Keepalive",
    "stop DampingReset",
    "drop",
    "release",
    "->Idle",
    "down",
    "start IdleHold 5",
];
const fn est_idle_with(n: &'static str) -> [&'static str; 9] {
    [
        n,
        "stop Hold",
        "stop Keepalive",
        "stop DampingReset",
        "drop",
        "release",
        "->Idle",
        "down",
        "start IdleHold 5",
    ]
}
const EST_FSM_ERR: &[&str] = &est_idle_with("notify 5/3");

#[rustfmt::skip]
const TABLE: &[Row] = {
    use Setup as S;
    use State::*;
    &[
    // ---- Idle, never started ----
    (S::Idle, "ManualStart", Connect, 0, TO_CONNECT),
    (S::Idle, "ManualStartPassive", Active, 0, &["->Active"]),
    (S::Idle, "AutomaticStart", Connect, 0, TO_CONNECT),
    (S::Idle, "AutomaticStartPassive", Active, 0, &["->Active"]),
    (S::Idle, "ManualStop", Idle, 0, NONE),
    (S::Idle, "AutomaticStop", Idle, 0, NONE),
    (S::Idle, "ConnectRetryExp", Idle, 0, NONE),
    (S::Idle, "HoldExp", Idle, 0, NONE),
    (S::Idle, "KeepaliveExp", Idle, 0, NONE),
    (S::Idle, "DelayOpenExp", Idle, 0, NONE),
    (S::Idle, "IdleHoldExp", Idle, 0, NONE),
    (S::Idle, "DampingResetExp", Idle, 0, NONE),
    (S::Idle, "TcpCrAcked", Idle, 0, &["drop"]),
    (S::Idle, "TcpConfirmed", Idle, 0, &["drop"]),
    (S::Idle, "TcpFails", Idle, 0, NONE),
    (S::Idle, "Open", Idle, 0, NONE),
    (S::Idle, "BadOpen", Idle, 0, NONE),
    (S::Idle, "HeaderErr", Idle, 0, NONE),
    (S::Idle, "OpenMsgErr", Idle, 0, NONE),
    (S::Idle, "CollisionDump", Idle, 0, NONE),
    (S::Idle, "Notif", Idle, 0, NONE),
    (S::Idle, "NotifVerErr", Idle, 0, NONE),
    (S::Idle, "Keepalive", Idle, 0, NONE),
    (S::Idle, "Update", Idle, 0, NONE),
    (S::Idle, "UpdateErr", Idle, 0, NONE),
    // ---- Idle waiting for an automatic restart (counter 1 after a hold timer expiry) ----
    (S::IdleHold, "ManualStart", Connect, 0, &["stop IdleHold", "start ConnectRetry 120", "connect", "->Connect"]),
    (S::IdleHold, "ManualStartPassive", Active, 0, &["stop IdleHold", "->Active"]),
    (S::IdleHold, "AutomaticStart", Idle, 1, NONE),
    (S::IdleHold, "AutomaticStartPassive", Idle, 1, NONE),
    (S::IdleHold, "ManualStop", Idle, 1, &["stop IdleHold"]),
    (S::IdleHold, "AutomaticStop", Idle, 1, NONE),
    (S::IdleHold, "ConnectRetryExp", Idle, 1, NONE),
    (S::IdleHold, "HoldExp", Idle, 1, NONE),
    (S::IdleHold, "KeepaliveExp", Idle, 1, NONE),
    (S::IdleHold, "DelayOpenExp", Idle, 1, NONE),
    (S::IdleHold, "IdleHoldExp", Connect, 1, TO_CONNECT),
    (S::IdleHold, "DampingResetExp", Idle, 1, NONE),
    (S::IdleHold, "TcpCrAcked", Idle, 1, &["drop"]),
    (S::IdleHold, "TcpConfirmed", Idle, 1, &["drop"]),
    (S::IdleHold, "TcpFails", Idle, 1, NONE),
    (S::IdleHold, "Open", Idle, 1, NONE),
    (S::IdleHold, "BadOpen", Idle, 1, NONE),
    (S::IdleHold, "HeaderErr", Idle, 1, NONE),
    (S::IdleHold, "OpenMsgErr", Idle, 1, NONE),
    (S::IdleHold, "CollisionDump", Idle, 1, NONE),
    (S::IdleHold, "Notif", Idle, 1, NONE),
    (S::IdleHold, "NotifVerErr", Idle, 1, NONE),
    (S::IdleHold, "Keepalive", Idle, 1, NONE),
    (S::IdleHold, "Update", Idle, 1, NONE),
    (S::IdleHold, "UpdateErr", Idle, 1, NONE),
    // ---- Connect, connection attempt pending ----
    (S::Connect, "ManualStart", Connect, 0, NONE),
    (S::Connect, "ManualStartPassive", Connect, 0, NONE),
    (S::Connect, "AutomaticStart", Connect, 0, NONE),
    (S::Connect, "AutomaticStartPassive", Connect, 0, NONE),
    (S::Connect, "ManualStop", Idle, 0, &["stop ConnectRetry", "drop", "release", "->Idle"]),
    (S::Connect, "AutomaticStop", Idle, 1, RETRY_IDLE),
    (S::Connect, "ConnectRetryExp", Connect, 0, &["drop", "start ConnectRetry 120", "connect"]),
    (S::Connect, "HoldExp", Connect, 0, NONE),
    (S::Connect, "KeepaliveExp", Connect, 0, NONE),
    (S::Connect, "DelayOpenExp", Connect, 0, NONE),
    (S::Connect, "IdleHoldExp", Connect, 0, NONE),
    (S::Connect, "DampingResetExp", Connect, 0, NONE),
    (S::Connect, "TcpCrAcked", OpenSent, 0, RETRY_TO_OPEN_SENT),
    (S::Connect, "TcpConfirmed", OpenSent, 0, RETRY_TO_OPEN_SENT),
    (S::Connect, "TcpFails", Idle, 0, RETRY_IDLE),
    (S::Connect, "Open", Idle, 1, RETRY_IDLE),
    (S::Connect, "BadOpen", Idle, 1, RETRY_IDLE),
    (S::Connect, "HeaderErr", Idle, 1, RETRY_IDLE),
    (S::Connect, "OpenMsgErr", Idle, 1, RETRY_IDLE),
    (S::Connect, "CollisionDump", Idle, 1, RETRY_IDLE),
    (S::Connect, "Notif", Idle, 1, RETRY_IDLE),
    (S::Connect, "NotifVerErr", Idle, 1, RETRY_IDLE),
    (S::Connect, "Keepalive", Idle, 1, RETRY_IDLE),
    (S::Connect, "Update", Idle, 1, RETRY_IDLE),
    (S::Connect, "UpdateErr", Idle, 1, RETRY_IDLE),
    // ---- Connect, TCP up, DelayOpenTimer running ----
    (S::ConnectDelay, "ManualStart", Connect, 0, NONE),
    (S::ConnectDelay, "ManualStartPassive", Connect, 0, NONE),
    (S::ConnectDelay, "AutomaticStart", Connect, 0, NONE),
    (S::ConnectDelay, "AutomaticStartPassive", Connect, 0, NONE),
    (S::ConnectDelay, "ManualStop", Idle, 0, &["stop DelayOpen", "drop", "release", "->Idle"]),
    (S::ConnectDelay, "AutomaticStop", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "ConnectRetryExp", Connect, 0, NONE),
    (S::ConnectDelay, "HoldExp", Connect, 0, NONE),
    (S::ConnectDelay, "KeepaliveExp", Connect, 0, NONE),
    (S::ConnectDelay, "DelayOpenExp", OpenSent, 0, TO_OPEN_SENT),
    (S::ConnectDelay, "IdleHoldExp", Connect, 0, NONE),
    (S::ConnectDelay, "DampingResetExp", Connect, 0, NONE),
    (S::ConnectDelay, "TcpCrAcked", Connect, 0, &["start DelayOpen 3"]),
    (S::ConnectDelay, "TcpConfirmed", Connect, 0, &["start DelayOpen 3"]),
    (S::ConnectDelay, "TcpFails", Active, 0, &["stop DelayOpen", "drop", "start ConnectRetry 120", "->Active"]),
    (S::ConnectDelay, "Open", OpenConfirm, 0, DELAYED_OPEN_ACCEPTED),
    (S::ConnectDelay, "BadOpen", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "HeaderErr", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "OpenMsgErr", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "CollisionDump", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "Notif", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "NotifVerErr", Idle, 0, DELAY_IDLE),
    (S::ConnectDelay, "Keepalive", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "Update", Idle, 1, DELAY_IDLE),
    (S::ConnectDelay, "UpdateErr", Idle, 1, DELAY_IDLE),
    // ---- Active, passive run: no timer ----
    (S::Active, "ManualStart", Active, 0, NONE),
    (S::Active, "ManualStartPassive", Active, 0, NONE),
    (S::Active, "AutomaticStart", Active, 0, NONE),
    (S::Active, "AutomaticStartPassive", Active, 0, NONE),
    (S::Active, "ManualStop", Idle, 0, &["drop", "release", "->Idle"]),
    (S::Active, "AutomaticStop", Idle, 1, IDLE),
    (S::Active, "ConnectRetryExp", Active, 0, NONE),
    (S::Active, "HoldExp", Active, 0, NONE),
    (S::Active, "KeepaliveExp", Active, 0, NONE),
    (S::Active, "DelayOpenExp", Active, 0, NONE),
    (S::Active, "IdleHoldExp", Active, 0, NONE),
    (S::Active, "DampingResetExp", Active, 0, NONE),
    (S::Active, "TcpCrAcked", OpenSent, 0, TO_OPEN_SENT),
    (S::Active, "TcpConfirmed", OpenSent, 0, TO_OPEN_SENT),
    (S::Active, "TcpFails", Idle, 1, IDLE),
    (S::Active, "Open", Idle, 1, IDLE),
    (S::Active, "BadOpen", Idle, 1, IDLE),
    (S::Active, "HeaderErr", Idle, 1, IDLE),
    (S::Active, "OpenMsgErr", Idle, 1, IDLE),
    (S::Active, "CollisionDump", Idle, 1, IDLE),
    (S::Active, "Notif", Idle, 1, IDLE),
    (S::Active, "NotifVerErr", Idle, 1, IDLE),
    (S::Active, "Keepalive", Idle, 1, IDLE),
    (S::Active, "Update", Idle, 1, IDLE),
    (S::Active, "UpdateErr", Idle, 1, IDLE),
    // ---- Active after a failed connection, ConnectRetryTimer running ----
    (S::ActiveRetry, "ManualStart", Active, 0, NONE),
    (S::ActiveRetry, "ManualStartPassive", Active, 0, NONE),
    (S::ActiveRetry, "AutomaticStart", Active, 0, NONE),
    (S::ActiveRetry, "AutomaticStartPassive", Active, 0, NONE),
    (S::ActiveRetry, "ManualStop", Idle, 0, &["stop ConnectRetry", "drop", "release", "->Idle"]),
    (S::ActiveRetry, "AutomaticStop", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "ConnectRetryExp", Connect, 0, TO_CONNECT),
    (S::ActiveRetry, "HoldExp", Active, 0, NONE),
    (S::ActiveRetry, "KeepaliveExp", Active, 0, NONE),
    (S::ActiveRetry, "DelayOpenExp", Active, 0, NONE),
    (S::ActiveRetry, "IdleHoldExp", Active, 0, NONE),
    (S::ActiveRetry, "DampingResetExp", Active, 0, NONE),
    (S::ActiveRetry, "TcpCrAcked", OpenSent, 0, RETRY_TO_OPEN_SENT),
    (S::ActiveRetry, "TcpConfirmed", OpenSent, 0, RETRY_TO_OPEN_SENT),
    (S::ActiveRetry, "TcpFails", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "Open", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "BadOpen", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "HeaderErr", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "OpenMsgErr", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "CollisionDump", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "Notif", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "NotifVerErr", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "Keepalive", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "Update", Idle, 1, RETRY_IDLE),
    (S::ActiveRetry, "UpdateErr", Idle, 1, RETRY_IDLE),
    // ---- Active, TCP up, DelayOpenTimer running ----
    (S::ActiveDelay, "ManualStart", Active, 0, NONE),
    (S::ActiveDelay, "ManualStartPassive", Active, 0, NONE),
    (S::ActiveDelay, "AutomaticStart", Active, 0, NONE),
    (S::ActiveDelay, "AutomaticStartPassive", Active, 0, NONE),
    (S::ActiveDelay, "ManualStop", Idle, 0, &["stop DelayOpen", "drop", "release", "->Idle"]),
    (S::ActiveDelay, "AutomaticStop", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "ConnectRetryExp", Active, 0, NONE),
    (S::ActiveDelay, "HoldExp", Active, 0, NONE),
    (S::ActiveDelay, "KeepaliveExp", Active, 0, NONE),
    (S::ActiveDelay, "DelayOpenExp", OpenSent, 0, TO_OPEN_SENT),
    (S::ActiveDelay, "IdleHoldExp", Active, 0, NONE),
    (S::ActiveDelay, "DampingResetExp", Active, 0, NONE),
    (S::ActiveDelay, "TcpCrAcked", Active, 0, &["start DelayOpen 3"]),
    (S::ActiveDelay, "TcpConfirmed", Active, 0, &["start DelayOpen 3"]),
    (S::ActiveDelay, "TcpFails", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "Open", OpenConfirm, 0, DELAYED_OPEN_ACCEPTED),
    (S::ActiveDelay, "BadOpen", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "HeaderErr", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "OpenMsgErr", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "CollisionDump", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "Notif", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "NotifVerErr", Idle, 0, DELAY_IDLE),
    (S::ActiveDelay, "Keepalive", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "Update", Idle, 1, DELAY_IDLE),
    (S::ActiveDelay, "UpdateErr", Idle, 1, DELAY_IDLE),
    // ---- OpenSent ----
    (S::OpenSent, "ManualStart", OpenSent, 0, NONE),
    (S::OpenSent, "ManualStartPassive", OpenSent, 0, NONE),
    (S::OpenSent, "AutomaticStart", OpenSent, 0, NONE),
    (S::OpenSent, "AutomaticStartPassive", OpenSent, 0, NONE),
    (S::OpenSent, "ManualStop", Idle, 0, &["notify 6/2", "stop Hold", "drop", "release", "->Idle"]),
    (S::OpenSent, "AutomaticStop", Idle, 1, &sent_idle_with("notify 6/1")),
    (S::OpenSent, "ConnectRetryExp", OpenSent, 0, NONE),
    (S::OpenSent, "HoldExp", Idle, 1, &["notify 4/0", "drop", "release", "->Idle", "start IdleHold 5"]),
    (S::OpenSent, "KeepaliveExp", OpenSent, 0, NONE),
    (S::OpenSent, "DelayOpenExp", OpenSent, 0, NONE),
    (S::OpenSent, "IdleHoldExp", OpenSent, 0, NONE),
    (S::OpenSent, "DampingResetExp", OpenSent, 0, NONE),
    (S::OpenSent, "TcpCrAcked", OpenSent, 0, NONE),
    (S::OpenSent, "TcpConfirmed", OpenSent, 0, NONE),
    (S::OpenSent, "TcpFails", Active, 0, &["stop Hold", "drop", "start ConnectRetry 120", "->Active"]),
    (S::OpenSent, "Open", OpenConfirm, 0, &["keepalive", "start Keepalive 30", "start Hold 90", "->OpenConfirm"]),
    (S::OpenSent, "BadOpen", Idle, 1, &sent_idle_with("notify 2/1")),
    (S::OpenSent, "HeaderErr", Idle, 1, &sent_idle_with("notify 1/2")),
    (S::OpenSent, "OpenMsgErr", Idle, 1, &sent_idle_with("notify 2/4")),
    (S::OpenSent, "CollisionDump", Idle, 1, &sent_idle_with("notify 6/7")),
    (S::OpenSent, "Notif", Idle, 1, SENT_IDLE),
    (S::OpenSent, "NotifVerErr", Idle, 0, SENT_IDLE),
    (S::OpenSent, "Keepalive", Idle, 1, SENT_FSM_ERR),
    (S::OpenSent, "Update", Idle, 1, SENT_FSM_ERR),
    (S::OpenSent, "UpdateErr", Idle, 1, SENT_FSM_ERR),
    // ---- OpenConfirm ----
    (S::OpenConfirm, "ManualStart", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "ManualStartPassive", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "AutomaticStart", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "AutomaticStartPassive", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "ManualStop", Idle, 0, &["notify 6/2", "stop Hold", "stop Keepalive", "drop", "release", "->Idle"]),
    (S::OpenConfirm, "AutomaticStop", Idle, 1, &conf_idle_with("notify 6/1")),
    (S::OpenConfirm, "ConnectRetryExp", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "HoldExp", Idle, 1, &["notify 4/0", "stop Keepalive", "drop", "release", "->Idle", "start IdleHold 5"]),
    (S::OpenConfirm, "KeepaliveExp", OpenConfirm, 0, &["keepalive", "start Keepalive 30"]),
    (S::OpenConfirm, "DelayOpenExp", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "IdleHoldExp", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "DampingResetExp", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "TcpCrAcked", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "TcpConfirmed", OpenConfirm, 0, NONE),
    (S::OpenConfirm, "TcpFails", Idle, 1, CONF_IDLE),
    (S::OpenConfirm, "Open", Idle, 1, CONF_FSM_ERR),
    (S::OpenConfirm, "BadOpen", Idle, 1, CONF_FSM_ERR),
    (S::OpenConfirm, "HeaderErr", Idle, 1, &conf_idle_with("notify 1/2")),
    (S::OpenConfirm, "OpenMsgErr", Idle, 1, &conf_idle_with("notify 2/4")),
    (S::OpenConfirm, "CollisionDump", Idle, 1, &conf_idle_with("notify 6/7")),
    (S::OpenConfirm, "Notif", Idle, 1, CONF_IDLE),
    (S::OpenConfirm, "NotifVerErr", Idle, 0, CONF_IDLE),
    (S::OpenConfirm, "Keepalive", Established, 0, &["start Hold 90", "->Established", "up 90/30", "start DampingReset 60"]),
    (S::OpenConfirm, "Update", Idle, 1, CONF_FSM_ERR),
    (S::OpenConfirm, "UpdateErr", Idle, 1, CONF_FSM_ERR),
    // ---- Established ----
    (S::Established, "ManualStart", Established, 0, NONE),
    (S::Established, "ManualStartPassive", Established, 0, NONE),
    (S::Established, "AutomaticStart", Established, 0, NONE),
    (S::Established, "AutomaticStartPassive", Established, 0, NONE),
    (S::Established, "ManualStop", Idle, 0, &["notify 6/2", "stop Hold", "stop Keepalive", "stop DampingReset", "drop", "release", "->Idle", "down"]),
    (S::Established, "AutomaticStop", Idle, 1, &est_idle_with("notify 6/1")),
    (S::Established, "ConnectRetryExp", Established, 0, NONE),
    (S::Established, "HoldExp", Idle, 1, &["notify 4/0", "stop Keepalive", "stop DampingReset", "drop", "release", "->Idle", "down", "start IdleHold 5"]),
    (S::Established, "KeepaliveExp", Established, 0, &["keepalive", "start Keepalive 30"]),
    (S::Established, "DelayOpenExp", Established, 0, NONE),
    (S::Established, "IdleHoldExp", Established, 0, NONE),
    (S::Established, "DampingResetExp", Established, 0, NONE),
    (S::Established, "TcpCrAcked", Established, 0, NONE),
    (S::Established, "TcpConfirmed", Established, 0, NONE),
    (S::Established, "TcpFails", Idle, 1, EST_IDLE),
    (S::Established, "Open", Idle, 1, EST_FSM_ERR),
    (S::Established, "BadOpen", Idle, 1, EST_FSM_ERR),
    (S::Established, "HeaderErr", Idle, 1, &est_idle_with("notify 1/2")),
    (S::Established, "OpenMsgErr", Idle, 1, EST_FSM_ERR),
    (S::Established, "CollisionDump", Idle, 1, &est_idle_with("notify 6/7")),
    (S::Established, "Notif", Idle, 1, EST_IDLE),
    (S::Established, "NotifVerErr", Idle, 1, EST_IDLE),
    (S::Established, "Keepalive", Established, 0, &["start Hold 90"]),
    (S::Established, "Update", Established, 0, &["update", "start Hold 90"]),
    (S::Established, "UpdateErr", Idle, 1, &est_idle_with("notify 3/1")),
    ]
};

#[test]
fn every_input_kind_has_a_sample() {
    let samples = samples();
    let mut kinds = vec![
        InputKind::ManualStart,
        InputKind::ManualStartPassive,
        InputKind::AutomaticStart,
        InputKind::AutomaticStartPassive,
        InputKind::ManualStop,
        InputKind::AutomaticStop,
        InputKind::TcpCrAcked,
        InputKind::TcpConnectionConfirmed,
        InputKind::TcpConnectionFails,
        InputKind::BgpOpen,
        InputKind::BgpHeaderErr,
        InputKind::BgpOpenMsgErr,
        InputKind::OpenCollisionDump,
        InputKind::NotifMsgVerErr,
        InputKind::NotifMsg,
        InputKind::KeepAliveMsg,
        InputKind::UpdateMsg,
        InputKind::UpdateMsgErr,
    ];
    kinds.extend(Timer::ALL.map(InputKind::TimerExpired));
    for k in kinds {
        let label = label_of_kind(k);
        let sample = samples.iter().find(|(l, _)| *l == label);
        let Some((_, input)) = sample else {
            panic!("no sample for input kind {k}")
        };
        assert_eq!(input.kind(), k, "sample {label} has the wrong kind");
    }
}

#[test]
fn every_state_and_input_pair_is_specified_and_holds() {
    let mut rows: BTreeMap<(Setup, &str), &Row> = BTreeMap::new();
    for row in TABLE {
        assert!(
            rows.insert((row.0, row.1), row).is_none(),
            "duplicate row {:?} {}",
            row.0,
            row.1
        );
    }
    let samples = samples();
    let mut failures = Vec::new();
    for s in SETUPS {
        for (label, input) in &samples {
            let Some(&&(_, _, state, counter, expected)) = rows.get(&(s, *label)) else {
                failures.push(format!("missing row: {s:?} x {label}"));
                continue;
            };
            let mut f = setup(s);
            let outs = f.process(input.clone());
            let got = shorts(&outs);
            if f.state() != state || f.connect_retry_counter() != counter || got != expected {
                failures.push(format!(
                    "{s:?} x {label}: expected {state} counter {counter} {expected:?}\n    got {} counter {} {got:?}",
                    f.state(),
                    f.connect_retry_counter()
                ));
            }
        }
    }
    assert_eq!(
        rows.len(),
        SETUPS.len() * samples.len(),
        "rows for unknown samples"
    );
    assert!(
        failures.is_empty(),
        "{} table failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_rfc_state_is_covered_by_a_setup() {
    for st in State::ALL {
        assert!(
            SETUPS.iter().any(|s| setup(*s).state() == st),
            "no setup in state {st}"
        );
    }
}
