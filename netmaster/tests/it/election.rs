//! Leader election on a real etcd cluster: one leader, followers that know it, a crashed
//! leader replaced when its lease expires, a resigning one at once, and elections that
//! go on when an etcd member dies.

use crate::common;

use std::time::Duration;

use netmaster::election::{Election, Role};
use netmaster::store::EtcdStore;

const TTL: i64 = 2;
const DEADLINE: Duration = Duration::from_secs(30);

/// A campaigning netmaster and the URL it advertises.
struct Member {
    url: String,
    election: Election,
}

async fn elections(endpoints: &[String], n: usize) -> Vec<Member> {
    let mut out = Vec::new();
    for i in 0..n {
        let store = EtcdStore::connect(endpoints, "/t").await.unwrap();
        let url = format!("http://nm{i}:9999");
        let election = Election::etcd(store.client(), "/t/leader", &url, TTL);
        out.push(Member { url, election });
    }
    out
}

/// Waits until exactly one election leads and every other one names it; returns its index.
async fn settled(es: &[Member]) -> usize {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let roles: Vec<Role> = es.iter().map(|m| m.election.role()).collect();
            let leaders: Vec<usize> = (0..roles.len()).filter(|i| roles[*i].is_leader()).collect();
            if let [l] = leaders[..] {
                let url = es[l].url.clone();
                let named = roles.iter().enumerate().all(|(i, r)| {
                    i == l
                        || *r
                            == Role::Follower {
                                leader: Some(url.clone()),
                            }
                });
                if named {
                    return l;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        let roles: Vec<Role> = es.iter().map(|m| m.election.role()).collect();
        panic!("the election did not settle: {roles:?}")
    })
}

#[tokio::test]
async fn one_leader_and_followers_that_know_it() {
    let etcd = common::Etcd::start();
    let es = elections(std::slice::from_ref(&etcd.endpoint), 3).await;
    settled(&es).await;
}

#[tokio::test]
async fn a_crashed_leader_is_replaced_when_its_lease_expires() {
    let etcd = common::Etcd::start();
    let mut es = elections(std::slice::from_ref(&etcd.endpoint), 3).await;
    let first = settled(&es).await;
    // Dropping without resigning is a crash: the lease is no longer kept alive.
    drop(es.remove(first));
    let second = settled(&es).await;
    assert!(es[second].election.role().is_leader());
}

#[tokio::test]
async fn a_resigning_leader_hands_over() {
    let etcd = common::Etcd::start();
    let mut es = elections(std::slice::from_ref(&etcd.endpoint), 2).await;
    let first = settled(&es).await;
    es.remove(first).election.resign().await;
    let other = &es[0].election;
    tokio::time::timeout(DEADLINE, other.wait_for(Role::is_leader))
        .await
        .expect("takes over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elections_go_on_when_an_etcd_member_dies() {
    let mut cluster = common::Etcd::cluster(3);
    let endpoints = common::endpoints(&cluster);
    let mut es = elections(&endpoints, 3).await;
    let first = settled(&es).await;
    cluster[0].kill();
    // The leader crashes too; the survivors elect a new one on the 2-member quorum.
    drop(es.remove(first));
    settled(&es).await;
}

#[tokio::test]
async fn the_local_election_always_leads() {
    assert_eq!(Election::local().role(), Role::Leader);
}
