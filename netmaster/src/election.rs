//! Leader election between netmasters.
//!
//! - On the embedded store there is exactly one netmaster per store file (the file is
//!   locked), so it is the leader from the start ([`Election::local`]).
//! - On etcd, netmasters campaign with etcd's election API on a lease they keep alive
//!   ([`Election::etcd`]). The campaign value is the netmaster's advertised URL, so
//!   followers know where to send writes. A netmaster that stops keeping its lease alive
//!   (crash, partition) loses leadership when the lease expires, and another campaigner
//!   takes over; one that notices its lease is gone steps down at once and campaigns
//!   again.
//!
//! The current [`Role`] is published on a `tokio::sync::watch` channel.

use std::time::Duration;

use etcd_client::{Client, ResignOptions};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What this netmaster is right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    Leader,
    /// Someone else leads (their advertised URL, when known).
    Follower {
        leader: Option<String>,
    },
}

impl Role {
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader)
    }
}

/// A running election. Dropping it without [`Election::resign`] behaves like a crash:
/// the lease is no longer kept alive and expires.
#[derive(Debug)]
pub struct Election {
    role: watch::Receiver<Role>,
    task: Option<JoinHandle<()>>,
    resign: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Election {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Election {
    /// The single-node election: always the leader.
    pub fn local() -> Election {
        let (_tx, role) = watch::channel(Role::Leader);
        Election {
            role,
            task: None,
            resign: None,
        }
    }

    /// Campaigns for leadership of `name` on etcd, advertising `me`, with a lease of
    /// `ttl` seconds (the longest a dead leader keeps the role).
    pub fn etcd(client: Client, name: &str, me: &str, ttl: i64) -> Election {
        let (tx, role) = watch::channel(Role::Follower { leader: None });
        let (resign_tx, resign_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(campaign_loop(
            client,
            name.to_string(),
            me.to_string(),
            ttl.max(2),
            tx,
            resign_rx,
        ));
        Election {
            role,
            task: Some(task),
            resign: Some(resign_tx),
        }
    }

    /// The role now.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// A receiver that sees every role change.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Waits until the role satisfies `f`.
    pub async fn wait_for(&self, f: impl Fn(&Role) -> bool) -> Role {
        let mut rx = self.role.clone();
        rx.wait_for(|r| f(r))
            .await
            .map(|r| r.clone())
            .unwrap_or(Role::Follower { leader: None })
    }

    /// Gives leadership up cleanly (a successor takes over at once) and stops.
    pub async fn resign(mut self) {
        if let Some(tx) = self.resign.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

/// Follows who leads `name`, publishing the leader's advertised value. etcd answers an
/// observe call only once a leader exists, so this runs beside the campaign, never
/// before it (awaiting it first would starve the lease keep-alives).
async fn observe_loop(client: Client, name: String, leader: watch::Sender<Option<String>>) {
    let retry = Duration::from_millis(500);
    loop {
        if let Ok(mut stream) = client.election_client().observe(name.clone()).await {
            while let Some(Ok(r)) = stream.next().await {
                let value = r
                    .kv()
                    .and_then(|kv| std::str::from_utf8(kv.value()).ok())
                    .map(str::to_string);
                leader.send_replace(value);
            }
        }
        leader.send_replace(None);
        tokio::time::sleep(retry).await;
    }
}

/// Aborts the task it holds when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn campaign_loop(
    client: Client,
    name: String,
    me: String,
    ttl: i64,
    role: watch::Sender<Role>,
    mut resign: tokio::sync::oneshot::Receiver<()>,
) {
    let retry = Duration::from_millis(500);
    let (leader_tx, mut observed) = watch::channel(None);
    let _observer = AbortOnDrop(tokio::spawn(observe_loop(
        client.clone(),
        name.clone(),
        leader_tx,
    )));
    let follower = |observed: &watch::Receiver<Option<String>>| Role::Follower {
        leader: observed.borrow().clone().filter(|l| *l != me),
    };
    loop {
        role.send_replace(follower(&observed));
        let mut lease_client = client.lease_client();
        let lease = match lease_client.grant(ttl, None).await {
            Ok(l) => l.id(),
            Err(e) => {
                tracing::warn!("election: lease grant failed: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(retry) => continue,
                    _ = &mut resign => return,
                }
            }
        };
        let (mut keeper, mut acks) = match lease_client.keep_alive(lease).await {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("election: lease keep-alive failed: {e}");
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        let mut election = client.election_client();
        let mut tick = tokio::time::interval(Duration::from_millis((ttl as u64 * 1000) / 3));
        let mut campaign = Box::pin({
            let mut e = client.election_client();
            let (name, me) = (name.clone(), me.clone());
            async move { e.campaign(name, me, lease).await }
        });
        let mut leader_key = None;
        // Keep the lease alive while campaigning and while leading; any sign that the
        // lease is gone ends this round.
        let lost = loop {
            tokio::select! {
                _ = &mut resign => {
                    if let Some(k) = leader_key.take() {
                        let _ = election.resign(Some(ResignOptions::new().with_leader(k))).await;
                    }
                    let _ = lease_client.revoke(lease).await;
                    role.send_replace(Role::Follower { leader: None });
                    return;
                }
                _ = tick.tick() => {
                    if keeper.keep_alive().await.is_err() {
                        break "keep-alive could not be sent";
                    }
                }
                ack = acks.next() => match ack {
                    Some(Ok(a)) if a.ttl() > 0 => {}
                    _ => break "the lease expired",
                },
                won = &mut campaign, if leader_key.is_none() => match won {
                    Ok(mut r) => {
                        leader_key = r.take_leader();
                        role.send_replace(Role::Leader);
                    }
                    Err(e) => {
                        tracing::warn!("election: campaign failed: {e}");
                        break "the campaign failed";
                    }
                },
                changed = observed.changed() => {
                    if changed.is_err() {
                        break "the observer stopped";
                    }
                    if leader_key.is_none() {
                        role.send_replace(follower(&observed));
                    }
                }
            }
        };
        tracing::warn!("election: stepping down: {lost}");
        let _ = lease_client.revoke(lease).await;
        role.send_replace(Role::Follower { leader: None });
        tokio::select! {
            _ = tokio::time::sleep(retry) => {}
            _ = &mut resign => return,
        }
    }
}
