//! The per-state input handlers of RFC 4271 §8.2.2. Each handler is a match over the
//! input; the comments name the RFC events.

use super::codes;
use super::event::{DownReason, Input, NotificationData, State, Timer};
use super::open::validate_open;
use super::{Counter, Fsm, Output};

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
            // Event 13: the automatic restart; it keeps the ConnectRetryCounter.
            Input::TimerExpired(Timer::IdleHold) => {
                self.start(self.passive || self.cfg.passive, Counter::Keep, out);
            }
            // Event 2: nothing to stop but a pending automatic restart.
            Input::ManualStop => {
                self.stop_timer(Timer::IdleHold, out);
                self.disable();
            }
            // A connection completing in Idle is not ours to use.
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {
                out.push(Output::DropConnection);
            }
            // Event 8 and every other event: no change.
            _ => {}
        }
    }

    // ---- Connect and Active ----

    pub(super) fn on_connect_or_active(&mut self, input: Input, out: &mut Vec<Output>) {
        let connect = self.state == State::Connect;
        let delay_open_running = self.is_running(Timer::DelayOpen);
        match input {
            // Events 1, 3-7.
            Input::ManualStart
            | Input::ManualStartPassive
            | Input::AutomaticStart
            | Input::AutomaticStartPassive => {}
            // Event 2.
            Input::ManualStop => {
                if delay_open_running && self.cfg.send_notification_without_open {
                    let n = NotificationData::cease(codes::cease::ADMINISTRATIVE_SHUTDOWN);
                    out.push(Output::SendNotification(n));
                }
                self.go_idle(DownReason::ManualStop, Counter::Reset, false, out);
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
            // Event 20 (19 when the DelayOpenTimer does not run: see below).
            Input::BgpOpen(open) if delay_open_running => match validate_open(&self.cfg, &open) {
                Ok(n) => self.accept_open(n, true, out),
                Err(n) => self.fail_before_open(n, out),
            },
            // Events 21 and 22.
            Input::BgpHeaderErr(n) | Input::BgpOpenMsgErr(n) => self.fail_before_open(n, out),
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
            // Event 23.
            Input::OpenCollisionDump => {
                self.go_idle(DownReason::CollisionDump, Counter::Increment, true, out);
            }
            // Event 8.
            Input::AutomaticStop { cease_subcode } => {
                let reason = DownReason::AutomaticStop { cease_subcode };
                self.go_idle(reason, Counter::Increment, true, out);
            }
            // Events 10, 11, 13 (never running here), 19, 26-28.
            other => {
                let reason = DownReason::UnexpectedInput {
                    state: self.state,
                    input: other.kind(),
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

    // ---- OpenSent, OpenConfirm, Established: the common events ----

    /// Handles the inputs that OpenSent, OpenConfirm and Established treat alike. Returns
    /// the input back when the state must handle it itself.
    fn on_synchronised(&mut self, input: Input, out: &mut Vec<Output>) -> Option<Input> {
        match input {
            // Events 1, 3-7.
            Input::ManualStart
            | Input::ManualStartPassive
            | Input::AutomaticStart
            | Input::AutomaticStartPassive => {}
            // Event 2.
            Input::ManualStop => {
                let n = NotificationData::cease(codes::cease::ADMINISTRATIVE_SHUTDOWN);
                out.push(Output::SendNotification(n));
                self.go_idle(DownReason::ManualStop, Counter::Reset, false, out);
            }
            // Event 8.
            Input::AutomaticStop { cease_subcode } => {
                out.push(Output::SendNotification(NotificationData::cease(
                    cease_subcode,
                )));
                let reason = DownReason::AutomaticStop { cease_subcode };
                self.go_idle(reason, Counter::Increment, true, out);
            }
            // Event 10.
            Input::TimerExpired(Timer::Hold) => {
                let n = NotificationData::new(codes::HOLD_TIMER_EXPIRED, 0);
                out.push(Output::SendNotification(n));
                self.go_idle(DownReason::HoldTimerExpired, Counter::Increment, true, out);
            }
            // Events 16 and 17: a second connection belongs to a second FSM (§6.8).
            Input::TcpCrAcked | Input::TcpConnectionConfirmed => {}
            // Event 23.
            Input::OpenCollisionDump => {
                let n = NotificationData::cease(codes::cease::CONNECTION_COLLISION_RESOLUTION);
                out.push(Output::SendNotification(n));
                self.go_idle(DownReason::CollisionDump, Counter::Increment, true, out);
            }
            // Event 24: no counter increment and no damping before Established.
            Input::NotifMsg(n) if n.is_version_error() && self.state != State::Established => {
                let reason = DownReason::NotificationReceived(n);
                self.go_idle(reason, Counter::Keep, false, out);
            }
            // Events 24 (Established) and 25; we never answer a NOTIFICATION.
            Input::NotifMsg(n) => {
                let reason = DownReason::NotificationReceived(n);
                self.go_idle(reason, Counter::Increment, true, out);
            }
            // Event 21 (§6.1).
            Input::BgpHeaderErr(n) => self.fail_with(n, out),
            other => return Some(other),
        }
        None
    }

    /// The FSM Error NOTIFICATION for an unexpected message in the current state
    /// (RFC 6608).
    fn unexpected(&mut self, out: &mut Vec<Output>) {
        let subcode = match self.state {
            State::OpenSent => codes::fsm::UNEXPECTED_IN_OPEN_SENT,
            State::OpenConfirm => codes::fsm::UNEXPECTED_IN_OPEN_CONFIRM,
            State::Established => codes::fsm::UNEXPECTED_IN_ESTABLISHED,
            State::Idle | State::Connect | State::Active => codes::fsm::UNSPECIFIED,
        };
        self.fail_with(NotificationData::fsm_error(subcode), out);
    }

    // ---- OpenSent ----

    pub(super) fn on_open_sent(&mut self, input: Input, out: &mut Vec<Output>) {
        let Some(input) = self.on_synchronised(input, out) else {
            return;
        };
        match input {
            // Event 18.
            Input::TcpConnectionFails => {
                self.stop_timer(Timer::Hold, out);
                out.push(Output::DropConnection);
                if !self.passive {
                    self.start_timer(Timer::ConnectRetry, self.cfg.connect_retry, out);
                }
                self.set_state(State::Active, out);
            }
            // Events 19 and 22.
            Input::BgpOpen(open) => match validate_open(&self.cfg, &open) {
                Ok(n) => self.accept_open(n, false, out),
                Err(n) => self.fail_with(n, out),
            },
            Input::BgpOpenMsgErr(n) => self.fail_with(n, out),
            // Events 26-28.
            Input::KeepAliveMsg | Input::UpdateMsg | Input::UpdateMsgErr(_) => {
                self.unexpected(out);
            }
            // Events 9, 11-13: those timers never run in OpenSent, so their expiry is
            // stale and was filtered out before; handled like RFC 4271 says should one
            // get here.
            Input::TimerExpired(_) => {
                self.fail_with(NotificationData::fsm_error(codes::fsm::UNSPECIFIED), out);
            }
            _ => {}
        }
    }

    // ---- OpenConfirm ----

    pub(super) fn on_open_confirm(&mut self, input: Input, out: &mut Vec<Output>) {
        let Some(input) = self.on_synchronised(input, out) else {
            return;
        };
        match input {
            // Event 11.
            Input::TimerExpired(Timer::Keepalive) => self.keepalive_due(out),
            // Event 18.
            Input::TcpConnectionFails => {
                self.go_idle(DownReason::ConnectionFailed, Counter::Increment, true, out);
            }
            // Event 22.
            Input::BgpOpenMsgErr(n) => self.fail_with(n, out),
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
            // Event 19 on this connection (collisions concern the other connection and
            // come as OpenCollisionDump), events 27 and 28.
            Input::BgpOpen(_) | Input::UpdateMsg | Input::UpdateMsgErr(_) => self.unexpected(out),
            // Events 9, 12, 13: stale, see OpenSent.
            Input::TimerExpired(_) => {
                self.fail_with(NotificationData::fsm_error(codes::fsm::UNSPECIFIED), out);
            }
            _ => {}
        }
    }

    // ---- Established ----

    pub(super) fn on_established(&mut self, input: Input, out: &mut Vec<Output>) {
        let Some(input) = self.on_synchronised(input, out) else {
            return;
        };
        match input {
            // Event 11.
            Input::TimerExpired(Timer::Keepalive) => self.keepalive_due(out),
            // The session stayed up long enough: forget past oscillations.
            Input::TimerExpired(Timer::DampingReset) => {
                self.idle_hold = self.cfg.idle_hold;
                self.damped_flaps = 0;
            }
            // Event 18.
            Input::TcpConnectionFails => {
                self.go_idle(DownReason::ConnectionFailed, Counter::Increment, true, out);
            }
            // Event 26.
            Input::KeepAliveMsg => self.restart_hold_timer(out),
            // Event 27.
            Input::UpdateMsg => {
                out.push(Output::ProcessUpdate);
                self.restart_hold_timer(out);
            }
            // Event 28.
            Input::UpdateMsgErr(n) => self.fail_with(n, out),
            // Events 19-20, 22 (an OPEN on an established connection).
            Input::BgpOpen(_) | Input::BgpOpenMsgErr(_) => self.unexpected(out),
            // Events 9, 12, 13: stale, see OpenSent.
            Input::TimerExpired(_) => {
                self.fail_with(NotificationData::fsm_error(codes::fsm::UNSPECIFIED), out);
            }
            _ => {}
        }
    }
}
