//! The per-state input handlers of RFC 4271 §8.2.2. Each handler is one exhaustive match
//! over the input (no catch-all arm, so a new input cannot go unhandled); the comments
//! name the RFC events.

use super::event::{DownReason, Input, NotificationData, State, Timer};
use super::open::validate_open;
use super::{Counter, Fsm, Output};
use crate::error_codes::{CeaseError, ErrorCode, FsmError};

impl Fsm {
    // ---- Idle ----

    pub(super) fn on_idle(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            // Events 1 and 4: an operator start also overrides a pending idle hold.
            Input::ManualStart => self.start(self.cfg.passive, Counter::Reset, out),
            Input::ManualStartPassive => self.start(true, Counter::Reset, out),
            // Events 3, 5, 6, 7: while the IdleHoldTimer runs a restart is already
            // scheduled, so an automatic start waits for it (damping).
            Input::AutomaticStart | Input::AutomaticStartPassive
                if self.is_running(Timer::IdleHold) => {}
            Input::AutomaticStart => self.start(self.cfg.passive, Counter::Reset, out),
            Input::AutomaticStartPassive => self.start(true, Counter::Reset, out),
            // Event 2: nothing to stop but a pending automatic restart.
            Input::ManualStop => {
                self.stop_timer(Timer::IdleHold, out);
                self.disable();
            }
            // Event 13: the automatic restart, in the mode of the previous run; it keeps
            // the ConnectRetryCounter.
            Input::TimerExpired(Timer::IdleHold) => self.start(self.passive, Counter::Keep, out),
            // A connection completing in Idle is not ours to use.
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {
                out.push(Output::DropConnection);
            }
            // Events 8, 9-12 (those timers never run in Idle), 18-28: no change.
            Input::AutomaticStop { .. }
            | Input::TimerExpired(_)
            | Input::TcpConnectionFails
            | Input::BgpOpen(_)
            | Input::BgpHeaderErr(_)
            | Input::BgpOpenMsgErr(_)
            | Input::OpenCollisionDump
            | Input::NotifMsg(_)
            | Input::KeepAliveMsg
            | Input::UpdateMsg
            | Input::UpdateMsgErr(_) => {}
        }
    }

    // ---- Connect and Active ----

    pub(super) fn on_connect_or_active(&mut self, input: Input, out: &mut Vec<Output>) {
        let connect = self.state == State::Connect;
        let delay_open_running = self.is_running(Timer::DelayOpen);
        let kind = input.kind();
        match input {
            // Events 1, 3-7.
            Input::ManualStart
            | Input::ManualStartPassive
            | Input::AutomaticStart
            | Input::AutomaticStartPassive => {}
            // Event 2.
            Input::ManualStop => {
                if delay_open_running && self.cfg.send_notification_without_open {
                    let n = NotificationData::cease(CeaseError::AdministrativeShutdown);
                    out.push(Output::SendNotification(n));
                }
                self.go_idle(DownReason::ManualStop, Counter::Reset, false, out);
            }
            // Event 8.
            Input::AutomaticStop { cease_subcode } => {
                let reason = DownReason::AutomaticStop { cease_subcode };
                self.go_idle(reason, Counter::Increment, true, out);
            }
            // Event 9.
            Input::TimerExpired(Timer::ConnectRetry) => {
                self.stop_timer(Timer::DelayOpen, out);
                if connect {
                    out.push(Output::DropConnection);
                }
                self.start_timer(Timer::ConnectRetry, self.cfg.connect_retry, out);
                out.push(Output::InitiateConnection);
                self.set_state(State::Connect, out);
            }
            // Event 12.
            Input::TimerExpired(Timer::DelayOpen) => {
                self.stop_timer(Timer::ConnectRetry, out);
                self.send_open(out);
                self.set_state(State::OpenSent, out);
            }
            // Events 16 and 17.
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {
                self.stop_timer(Timer::ConnectRetry, out);
                if let Some(delay) = self.cfg.delay_open {
                    self.start_timer(Timer::DelayOpen, delay, out);
                } else {
                    self.send_open(out);
                    self.set_state(State::OpenSent, out);
                }
            }
            // Event 18.
            Input::TcpConnectionFails => {
                if connect && delay_open_running {
                    self.stop_timer(Timer::DelayOpen, out);
                    out.push(Output::DropConnection);
                    if !self.passive {
                        self.start_timer(Timer::ConnectRetry, self.cfg.connect_retry, out);
                    }
                    self.set_state(State::Active, out);
                } else if connect {
                    self.go_idle(DownReason::ConnectionFailed, Counter::Keep, false, out);
                } else {
                    self.go_idle(DownReason::ConnectionFailed, Counter::Increment, true, out);
                }
            }
            // Event 20; an invalid OPEN is event 22.
            Input::BgpOpen(open) if delay_open_running => match validate_open(&self.cfg, &open) {
                Ok(n) => self.accept_open(n, true, out),
                Err(n) => self.fail_before_open(n, out),
            },
            // Events 21 and 22.
            Input::BgpHeaderErr(n) | Input::BgpOpenMsgErr(n) => self.fail_before_open(n, out),
            // Event 23.
            Input::OpenCollisionDump => {
                self.go_idle(DownReason::CollisionDump, Counter::Increment, true, out);
            }
            // Event 24.
            Input::NotifMsg(n) if n.is_version_error() => {
                let reason = DownReason::NotificationReceived(n);
                if delay_open_running {
                    self.go_idle(reason, Counter::Keep, false, out);
                } else {
                    self.go_idle(reason, Counter::Increment, true, out);
                }
            }
            // Event 25.
            Input::NotifMsg(n) => {
                let reason = DownReason::NotificationReceived(n);
                self.go_idle(reason, Counter::Increment, true, out);
            }
            // Events 10, 11, 13 (those timers never run here), 19 (an OPEN before TCP
            // is up or without DelayOpen), 26-28.
            Input::TimerExpired(
                Timer::Hold | Timer::Keepalive | Timer::IdleHold | Timer::DampingReset,
            )
            | Input::BgpOpen(_)
            | Input::KeepAliveMsg
            | Input::UpdateMsg
            | Input::UpdateMsgErr(_) => {
                let reason = DownReason::UnexpectedInput {
                    state: self.state,
                    input: kind,
                };
                self.go_idle(reason, Counter::Increment, true, out);
            }
        }
    }

    /// BGPHeaderErr / BGPOpenMsgErr before our OPEN was sent: the NOTIFICATION goes out
    /// only with SendNOTIFICATIONwithoutOPEN.
    fn fail_before_open(&mut self, n: NotificationData, out: &mut Vec<Output>) {
        if self.cfg.send_notification_without_open {
            out.push(Output::SendNotification(n.clone()));
        }
        self.go_idle(DownReason::ProtocolError(n), Counter::Increment, true, out);
    }

    // ---- OpenSent ----

    pub(super) fn on_open_sent(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            // Events 1, 3-7.
            Input::ManualStart
            | Input::ManualStartPassive
            | Input::AutomaticStart
            | Input::AutomaticStartPassive => {}
            // Event 2.
            Input::ManualStop => self.manual_stop_with_cease(out),
            // Event 8.
            Input::AutomaticStop { cease_subcode } => self.automatic_stop(cease_subcode, out),
            // Event 10.
            Input::TimerExpired(Timer::Hold) => self.hold_timer_expired(out),
            // Events 9, 11-13 and the damping reset: never running in OpenSent.
            Input::TimerExpired(_) => self.unexpected_timer(out),
            // Events 16 and 17: a second connection belongs to a second FSM (§6.8).
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {}
            // Event 18.
            Input::TcpConnectionFails => {
                self.stop_timer(Timer::Hold, out);
                out.push(Output::DropConnection);
                if !self.passive {
                    self.start_timer(Timer::ConnectRetry, self.cfg.connect_retry, out);
                }
                self.set_state(State::Active, out);
            }
            // Event 19; an invalid OPEN is event 22.
            Input::BgpOpen(open) => match validate_open(&self.cfg, &open) {
                Ok(n) => self.accept_open(n, false, out),
                Err(n) => self.fail_with(n, out),
            },
            // Events 21 and 22.
            Input::BgpHeaderErr(n) | Input::BgpOpenMsgErr(n) => self.fail_with(n, out),
            // Event 23.
            Input::OpenCollisionDump => self.collision_dump(out),
            // Events 24 and 25.
            Input::NotifMsg(n) => self.notification_received(n, out),
            // Events 26-28 (RFC 6608 subcode 1).
            Input::KeepAliveMsg | Input::UpdateMsg | Input::UpdateMsgErr(_) => {
                self.unexpected(out);
            }
        }
    }

    // ---- OpenConfirm ----

    pub(super) fn on_open_confirm(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            // Events 1, 3-7.
            Input::ManualStart
            | Input::ManualStartPassive
            | Input::AutomaticStart
            | Input::AutomaticStartPassive => {}
            // Event 2.
            Input::ManualStop => self.manual_stop_with_cease(out),
            // Event 8.
            Input::AutomaticStop { cease_subcode } => self.automatic_stop(cease_subcode, out),
            // Event 10.
            Input::TimerExpired(Timer::Hold) => self.hold_timer_expired(out),
            // Event 11.
            Input::TimerExpired(Timer::Keepalive) => self.keepalive_due(out),
            // Events 9, 12, 13 and the damping reset: never running in OpenConfirm.
            Input::TimerExpired(_) => self.unexpected_timer(out),
            // Events 16 and 17: a second connection belongs to a second FSM (§6.8).
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {}
            // Event 18.
            Input::TcpConnectionFails => {
                self.go_idle(DownReason::ConnectionFailed, Counter::Increment, true, out);
            }
            // Event 19 on this connection: collisions concern the peer's other connection
            // and arrive as OpenCollisionDump, so a second OPEN here is unexpected.
            Input::BgpOpen(_) => self.unexpected(out),
            // Events 21 and 22.
            Input::BgpHeaderErr(n) | Input::BgpOpenMsgErr(n) => self.fail_with(n, out),
            // Event 23.
            Input::OpenCollisionDump => self.collision_dump(out),
            // Events 24 and 25.
            Input::NotifMsg(n) => self.notification_received(n, out),
            // Event 26.
            Input::KeepAliveMsg => {
                self.restart_hold_timer(out);
                self.set_state(State::Established, out);
                if let Some(n) = self.negotiated {
                    out.push(Output::SessionUp(n));
                }
                if let Some(d) = self.cfg.damping {
                    self.start_timer(Timer::DampingReset, d.reset_after, out);
                }
            }
            // Events 27 and 28 (RFC 6608 subcode 2).
            Input::UpdateMsg | Input::UpdateMsgErr(_) => self.unexpected(out),
        }
    }

    // ---- Established ----

    pub(super) fn on_established(&mut self, input: Input, out: &mut Vec<Output>) {
        match input {
            // Events 1, 3-7.
            Input::ManualStart
            | Input::ManualStartPassive
            | Input::AutomaticStart
            | Input::AutomaticStartPassive => {}
            // Event 2.
            Input::ManualStop => self.manual_stop_with_cease(out),
            // Event 8.
            Input::AutomaticStop { cease_subcode } => self.automatic_stop(cease_subcode, out),
            // Event 10.
            Input::TimerExpired(Timer::Hold) => self.hold_timer_expired(out),
            // Event 11.
            Input::TimerExpired(Timer::Keepalive) => self.keepalive_due(out),
            // The session stayed up long enough: forget past oscillations.
            Input::TimerExpired(Timer::DampingReset) => {
                self.idle_hold = self.cfg.idle_hold;
                self.damped_flaps = 0;
            }
            // Events 9, 12, 13: never running in Established.
            Input::TimerExpired(_) => self.unexpected_timer(out),
            // Events 16 and 17: a second connection belongs to a second FSM (§6.8).
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {}
            // Event 18.
            Input::TcpConnectionFails => {
                self.go_idle(DownReason::ConnectionFailed, Counter::Increment, true, out);
            }
            // Events 19, 20, 22: an OPEN on an established connection (RFC 6608
            // subcode 3).
            Input::BgpOpen(_) | Input::BgpOpenMsgErr(_) => self.unexpected(out),
            // Event 21: the Message Header Error of §6.1.
            Input::BgpHeaderErr(n) => self.fail_with(n, out),
            // Event 23.
            Input::OpenCollisionDump => self.collision_dump(out),
            // Events 24 and 25.
            Input::NotifMsg(n) => self.notification_received(n, out),
            // Event 26.
            Input::KeepAliveMsg => self.restart_hold_timer(out),
            // Event 27.
            Input::UpdateMsg => {
                out.push(Output::ProcessUpdate);
                self.restart_hold_timer(out);
            }
            // Event 28.
            Input::UpdateMsgErr(n) => self.fail_with(n, out),
        }
    }

    // ---- actions shared by OpenSent, OpenConfirm and Established ----

    /// ManualStop after our OPEN: Cease / Administrative Shutdown.
    fn manual_stop_with_cease(&mut self, out: &mut Vec<Output>) {
        let n = NotificationData::cease(CeaseError::AdministrativeShutdown);
        out.push(Output::SendNotification(n));
        self.go_idle(DownReason::ManualStop, Counter::Reset, false, out);
    }

    /// AutomaticStop after our OPEN: Cease with the given subcode.
    fn automatic_stop(&mut self, cease_subcode: u8, out: &mut Vec<Output>) {
        out.push(Output::SendNotification(NotificationData::cease(
            CeaseError::from_code(cease_subcode),
        )));
        let reason = DownReason::AutomaticStop { cease_subcode };
        self.go_idle(reason, Counter::Increment, true, out);
    }

    fn hold_timer_expired(&mut self, out: &mut Vec<Output>) {
        let n = NotificationData::of(ErrorCode::HoldTimerExpired(0));
        out.push(Output::SendNotification(n));
        self.go_idle(DownReason::HoldTimerExpired, Counter::Increment, true, out);
    }

    fn collision_dump(&mut self, out: &mut Vec<Output>) {
        let n = NotificationData::cease(CeaseError::ConnectionCollisionResolution);
        out.push(Output::SendNotification(n));
        self.go_idle(DownReason::CollisionDump, Counter::Increment, true, out);
    }

    /// NotifMsgVerErr (event 24) or NotifMsg (event 25). Before Established a version
    /// error neither counts nor damps. A NOTIFICATION is never answered.
    fn notification_received(&mut self, n: NotificationData, out: &mut Vec<Output>) {
        let quiet = n.is_version_error() && self.state != State::Established;
        let reason = DownReason::NotificationReceived(n);
        if quiet {
            self.go_idle(reason, Counter::Keep, false, out);
        } else {
            self.go_idle(reason, Counter::Increment, true, out);
        }
    }

    /// The FSM Error NOTIFICATION for an unexpected message in the current state
    /// (RFC 6608).
    fn unexpected(&mut self, out: &mut Vec<Output>) {
        let subcode = match self.state {
            State::OpenSent => FsmError::UnexpectedInOpenSent,
            State::OpenConfirm => FsmError::UnexpectedInOpenConfirm,
            State::Established => FsmError::UnexpectedInEstablished,
            State::Idle | State::Connect | State::Active => FsmError::Unspecified,
        };
        self.fail_with(NotificationData::fsm_error(subcode), out);
    }

    /// The expiry of a timer the state never runs. Stale expiries are filtered out in
    /// [`Fsm::process_into`], so this is reached only if a timer was left running by
    /// mistake; RFC 4271 answers with an FSM Error.
    fn unexpected_timer(&mut self, out: &mut Vec<Output>) {
        self.fail_with(NotificationData::fsm_error(FsmError::Unspecified), out);
    }
}
