//! A node's CPU: one input at a time, each charging virtual time from the cost model; what
//! the engine outputs is published when the work is done, and its events update the
//! metrics and the member's view.

use ds_p2p::engine::{Command, Event, Output};
use ds_p2p::wire::{EnvelopeKind, GroupRef};

use super::node::EnvIx;
use super::{Act, Ev, Simulator, Work, json_str, short};
use crate::cost::Op;
use crate::scenario::{CommitOp, NodeId};
use crate::time::Micros;

impl Simulator {
    /// Runs `work` on node `n` now, or queues it behind the work the CPU is busy with.
    pub(crate) fn run_work(&mut self, n: NodeId, work: Work) {
        let t = self.now;
        let node = &self.nodes[n];
        if !node.is_up() {
            return;
        }
        if node.busy_until > t || !node.backlog.is_empty() {
            // One wake-up per busy node, not one per waiting item: re-queueing every waiting
            // item each time the CPU frees up costs events quadratic in a burst's size.
            let inc = node.incarnation;
            self.nodes[n].backlog.push_back((inc, work));
            self.schedule_backlog(n);
            return;
        }
        self.execute(n, work);
    }

    /// Puts a wake-up for `n`'s backlog on the queue, at the time its CPU frees up.
    fn schedule_backlog(&mut self, n: NodeId) {
        let node = &mut self.nodes[n];
        if node.backlog_scheduled {
            return;
        }
        node.backlog_scheduled = true;
        let at = node.busy_until.max(self.now);
        self.queue.push(at, Ev::Backlog { node: n });
    }

    /// The CPU of `n` may be free: runs the oldest waiting item, and waits for the next.
    pub(crate) fn run_backlog(&mut self, n: NodeId) {
        let node = &mut self.nodes[n];
        node.backlog_scheduled = false;
        if node.busy_until > self.now {
            self.schedule_backlog(n);
            return;
        }
        let Some((inc, work)) = node.backlog.pop_front() else {
            return;
        };
        if node.is_up() && inc == node.incarnation {
            self.execute(n, work);
        }
        if !self.nodes[n].backlog.is_empty() {
            self.schedule_backlog(n);
        }
    }

    /// Runs `work` on `n`'s engine now (its CPU is free) and charges its cost.
    fn execute(&mut self, n: NodeId, work: Work) {
        let t = self.now;
        let node = &self.nodes[n];
        let now_ms = node.engine_now_ms(t);
        let mut cost: Micros = 0;
        match work {
            Work::Envelope(id) => {
                if self.nodes[n].processed.contains(id) {
                    return;
                }
                let Some(env) = self.envs.get(id as usize).cloned() else {
                    return;
                };
                let group = self.group_by_ref.get(&env.group).copied();
                let members = group.map(|g| self.members_seen(n, g)).unwrap_or(1);
                let op = match env.kind {
                    EnvelopeKind::Handshake => Op::ProcessCommit,
                    EnvelopeKind::Application => Op::Receive,
                    EnvelopeKind::Welcome => Op::Join,
                    EnvelopeKind::Beacon => Op::Beacon,
                    _ => Op::Other,
                };
                cost += self.sc.cpu.cost(op, members);
                self.welcome_from = (env.kind == EnvelopeKind::Welcome).then_some(env.publisher);
                if let Some(engine) = &mut self.nodes[n].engine {
                    engine.handle_envelope(now_ms, &env.bytes);
                }
                self.nodes[n].processed.insert(id);
                if let Some(g) = group
                    && matches!(
                        env.kind,
                        EnvelopeKind::Handshake
                            | EnvelopeKind::Welcome
                            | EnvelopeKind::SequencerEcho
                    )
                {
                    self.state_changed(n, g);
                }
                if self.tracing() {
                    let line = format!(
                        "{{\"t\":{t},\"n\":{n},\"ev\":\"process\",\"id\":\"{}\",\"kind\":\"{:?}\"}}",
                        short(&env.id),
                        env.kind
                    );
                    self.trace_line(line);
                }
            }
            Work::Timeout => {
                cost += self.sc.cpu.cost(Op::Other, 1);
                if let Some(engine) = &mut self.nodes[n].engine {
                    engine.handle_timeout(now_ms);
                }
            }
            Work::Act(act) => cost += self.act(n, now_ms, act),
        }
        cost += self.drain(n);
        let done = t + cost;
        self.nodes[n].busy_until = done;
        let outputs = std::mem::take(&mut self.pending_publishes);
        for (topic, bytes) in outputs {
            self.publish(n, done, topic, bytes);
        }
        self.reschedule_timer(n, true);
    }

    /// Members in node `n`'s view of group `g` (at least 1).
    pub(crate) fn members_seen(&self, n: NodeId, g: usize) -> usize {
        self.views
            .get(&(g, n))
            .map(|v| v.members.len())
            .unwrap_or(1)
            .max(1)
    }

    fn state_changed(&mut self, n: NodeId, g: usize) {
        self.views.entry((g, n)).or_default().last_state_change = self.now;
        self.watch.insert((n, g));
    }

    /// Hands a workload action to node `n`'s engine; returns its own cost (beyond outputs).
    fn act(&mut self, n: NodeId, now_ms: u64, act: Act) -> Micros {
        let t = self.now;
        match act {
            Act::Setup(g) => self.setup_group(n, now_ms, g),
            Act::Send { group, index } => {
                let Some(gref) = self.groups[group].group_ref else {
                    return 0;
                };
                let mut body = (index as u64).to_le_bytes().to_vec();
                let size = self.sc.groups[group]
                    .traffic
                    .as_ref()
                    .map(|t| t.size)
                    .unwrap_or(64);
                body.resize(size.max(8), b'.');
                if let Some(engine) = &mut self.nodes[n].engine {
                    engine.handle_command(now_ms, Command::Send { group: gref, body });
                }
                self.metrics.sent[index].at = t;
                self.metrics.sent[index].issued = true;
                self.metrics.issued += 1;
                if self.tracing() {
                    let line = format!(
                        "{{\"t\":{t},\"n\":{n},\"ev\":\"send\",\"group\":{},\"msg\":{index}}}",
                        json_str(&self.groups[group].name)
                    );
                    self.trace_line(line);
                }
                0
            }
            Act::Commit { group, op, target } => {
                let Some(gref) = self.groups[group].group_ref else {
                    return 0;
                };
                let command = match op {
                    CommitOp::Update => Some(Command::SelfUpdate { group: gref }),
                    CommitOp::Leave => Some(Command::Leave { group: gref }),
                    CommitOp::Remove => target.map(|x| Command::Remove {
                        group: gref,
                        member: self.nodes[x].identity.clone(),
                    }),
                    CommitOp::Add => {
                        target
                            .and_then(|x| self.key_package_of(x))
                            .map(|key_package| Command::Invite {
                                group: gref,
                                key_package,
                            })
                    }
                };
                if self.tracing() {
                    let line = format!(
                        "{{\"t\":{t},\"n\":{n},\"ev\":\"commit\",\"group\":{},\"op\":\"{op:?}\",\"target\":{},\"issued\":{}}}",
                        json_str(&self.groups[group].name),
                        target
                            .map(|x| x.to_string())
                            .unwrap_or_else(|| "null".into()),
                        command.is_some()
                    );
                    self.trace_line(line);
                }
                if let (Some(command), Some(engine)) = (command, &mut self.nodes[n].engine) {
                    engine.handle_command(now_ms, command);
                    self.metrics.commits_made += 1;
                    self.state_changed(n, group);
                    self.note_commit_intent(n, group);
                }
                0
            }
        }
    }

    /// A fresh KeyPackage of node `x` (fetched as from its directory; `None` when it is down).
    fn key_package_of(&mut self, x: NodeId) -> Option<Vec<u8>> {
        let now_ms = self.nodes[x].engine_now_ms(self.now);
        let engine = self.nodes[x].engine.as_mut()?;
        engine.key_package(now_ms).ok()
    }

    /// The creator creates group `g` and invites every other member, one commit each.
    fn setup_group(&mut self, n: NodeId, now_ms: u64, g: usize) -> Micros {
        if self.groups[g].group_ref.is_some() {
            return 0;
        }
        let Some(engine) = &mut self.nodes[n].engine else {
            return 0;
        };
        let before: Vec<GroupRef> = engine.groups().collect();
        engine.handle_command(now_ms, Command::CreateGroup);
        let created = engine.groups().find(|r| !before.contains(r));
        let Some(gref) = created else { return 0 };
        self.groups[g].group_ref = Some(gref);
        self.group_by_ref.insert(gref, g);
        if self.tracing() {
            let line = format!(
                "{{\"t\":{},\"n\":{n},\"ev\":\"create\",\"group\":{},\"ref\":\"{}\"}}",
                self.now,
                json_str(&self.groups[g].name),
                hex::encode(&gref.0[..4])
            );
            self.trace_line(line);
        }
        let mut cost = self.drain(n);
        let others: Vec<NodeId> = self.groups[g]
            .members
            .iter()
            .copied()
            .filter(|m| *m != n)
            .collect();
        for m in others {
            let Some(key_package) = self.key_package_of(m) else {
                continue;
            };
            if let Some(engine) = &mut self.nodes[n].engine {
                engine.handle_command(
                    now_ms,
                    Command::Invite {
                        group: gref,
                        key_package,
                    },
                );
            }
            cost += self.drain(n);
        }
        self.state_changed(n, g);
        cost
    }

    /// Takes node `n`'s outputs: events update metrics and views now; publishes wait in
    /// `pending_publishes` for the end of the work. Returns the cost of what was published.
    pub(crate) fn drain(&mut self, n: NodeId) -> Micros {
        let mut outputs = Vec::new();
        if let Some(engine) = &mut self.nodes[n].engine {
            while let Some(o) = engine.poll_output() {
                outputs.push(o);
            }
        }
        let mut cost = 0;
        for output in outputs {
            match output {
                Output::Publish { topic, envelope } => {
                    let kind = ds_p2p::wire::Envelope::decode(&envelope, &self.config.limits)
                        .map(|e| (e.kind, self.group_by_ref.get(&e.group_ref).copied()));
                    if let Ok((kind, group)) = kind {
                        let members = group.map(|g| self.members_seen(n, g)).unwrap_or(1);
                        let op = match kind {
                            EnvelopeKind::Handshake => Some(Op::Commit),
                            EnvelopeKind::Application => Some(Op::Send),
                            EnvelopeKind::Beacon => Some(Op::Beacon),
                            _ => None,
                        };
                        if let Some(op) = op {
                            cost += self.sc.cpu.cost(op, members);
                        }
                    }
                    self.pending_publishes.push((topic, envelope));
                }
                Output::Event(event) => self.on_event(n, event),
            }
        }
        cost
    }

    /// An engine event of node `n`: counted, applied to its view, traced.
    fn on_event(&mut self, n: NodeId, event: Event) {
        let t = self.now;
        let group = event_group(&event).and_then(|r| self.group_by_ref.get(&r).copied());
        // For a delivery: the message's index in `metrics.sent` and how often it has now
        // been delivered to `n` (the trace shows both).
        let mut delivery = (None, 0);
        match &event {
            Event::GroupJoined { group: gref, epoch } => {
                if let Some(g) = group {
                    self.joined(n, g, *gref, *epoch);
                }
            }
            Event::Message { body, .. } => {
                let index = body
                    .get(..8)
                    .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize);
                delivery.0 = index;
                if let Some(m) = index.and_then(|i| self.metrics.sent.get_mut(i)) {
                    let e = m.delivered.entry(n).or_insert((0, t));
                    e.0 += 1;
                    delivery.1 = e.0;
                    if e.0 == 1 {
                        self.metrics.first_deliveries += 1;
                        if n != m.sender && !m.expected.contains(&n) {
                            self.metrics.read_outside_roster += 1;
                        }
                    }
                }
            }
            Event::EpochChanged {
                epoch, branch_id, ..
            } => {
                if let Some(g) = group {
                    let v = self.views.entry((g, n)).or_default();
                    v.epoch = *epoch;
                    v.branch = *branch_id;
                    self.state_changed(n, g);
                    self.check_commit_intents(g);
                }
            }
            Event::MembershipChanged { members, .. } => {
                if let Some(g) = group {
                    self.set_members(n, g, members);
                }
            }
            Event::ForkDetected { .. } => {
                self.metrics.forks_detected += 1;
                self.metrics.forks_per_node[n] += 1;
                if let Some(g) = group {
                    self.state_changed(n, g);
                }
            }
            Event::ForkBeyondWindow { .. } => self.metrics.forks_beyond_window += 1,
            Event::BranchSwitched {
                resent, reissued, ..
            } => {
                self.metrics.branch_switches += 1;
                self.metrics.switches_per_node[n] += 1;
                self.metrics.resent_messages += resent.len() as u64;
                self.metrics.reissued_intents += *reissued as u64;
                if let Some(g) = group {
                    self.state_changed(n, g);
                }
            }
            Event::Readded {
                resent, reissued, ..
            } => {
                self.metrics.readded += 1;
                self.metrics.resent_messages += resent.len() as u64;
                self.metrics.reissued_intents += *reissued as u64;
                if let Some(g) = group {
                    self.state_changed(n, g);
                }
            }
            Event::JoinLost { .. } | Event::Removed { .. } => {
                if matches!(event, Event::JoinLost { .. }) {
                    self.metrics.join_lost += 1;
                } else {
                    self.metrics.removed += 1;
                }
                if let Some(g) = group {
                    let v = self.views.entry((g, n)).or_default();
                    v.in_group = false;
                    v.left_at = Some(t);
                }
            }
            Event::Rejected { reason, .. } => {
                self.metrics.rejected += 1;
                let key: String = reason.chars().take(60).collect();
                *self.metrics.rejections.entry(key).or_default() += 1;
            }
            Event::Dropped { count, .. } => self.metrics.dropped += *count as u64,
            Event::RedeliveryAsked { .. } => self.metrics.redelivery_asks += 1,
            Event::RedeliveryAnswered { ids, .. } => {
                self.metrics.redelivered_on_ask += ids.len() as u64;
            }
            Event::ResendWithheld { ids, .. } => {
                self.metrics.resends_withheld += ids.len() as u64;
            }
            _ => {}
        }
        if self.tracing() {
            let line = self.event_line(n, group, &event, delivery);
            self.trace_line(line);
        }
    }

    /// The trace line of an engine event (formatted only when the trace is on).
    fn event_line(
        &self,
        n: NodeId,
        group: Option<usize>,
        event: &Event,
        (index, count): (Option<usize>, u32),
    ) -> String {
        let t = self.now;
        let name = group
            .map(|g| json_str(&self.groups[g].name))
            .unwrap_or_else(|| "null".into());
        match event {
            Event::GroupJoined { epoch, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"joined\",\"group\":{name},\"epoch\":{epoch}}}"
            ),
            Event::Message { .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"deliver\",\"group\":{name},\"msg\":{},\"count\":{count}}}",
                index
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "null".into())
            ),
            Event::EpochChanged {
                epoch, branch_id, ..
            } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"epoch\",\"group\":{name},\"epoch\":{epoch},\"branch\":\"{}\"}}",
                hex::encode(&branch_id[..4])
            ),
            Event::MembershipChanged { members, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"members\",\"group\":{name},\"count\":{}}}",
                members.len()
            ),
            Event::ForkDetected { epoch, commits, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"fork\",\"group\":{name},\"epoch\":{epoch},\"commits\":{}}}",
                commits.len()
            ),
            Event::ForkBeyondWindow { epoch, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"fork-beyond-window\",\"group\":{name},\"epoch\":{epoch}}}"
            ),
            Event::BranchSwitched {
                epoch,
                resent,
                reissued,
                ..
            } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"switch\",\"group\":{name},\"epoch\":{epoch},\"resent\":{},\"reissued\":{reissued}}}",
                resent.len()
            ),
            Event::Readded {
                epoch,
                resent,
                reissued,
                ..
            } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"readded\",\"group\":{name},\"epoch\":{epoch},\"resent\":{},\"reissued\":{reissued}}}",
                resent.len()
            ),
            Event::JoinLost { .. } | Event::Removed { .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"{}\",\"group\":{name}}}",
                if matches!(event, Event::JoinLost { .. }) {
                    "join-lost"
                } else {
                    "removed"
                }
            ),
            Event::Rejected { reason, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"rejected\",\"group\":{name},\"reason\":{}}}",
                json_str(reason)
            ),
            Event::Dropped { count, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"dropped\",\"group\":{name},\"count\":{count}}}"
            ),
            Event::SplitHealed {
                fork_epoch,
                epoch,
                redelivered,
                reapplied,
                ..
            } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"split-healed\",\"group\":{name},\"fork_epoch\":{fork_epoch},\"epoch\":{epoch},\"resent\":{},\"reapplied\":{reapplied}}}",
                redelivered.len()
            ),
            Event::SplitRejoined {
                fork_epoch,
                epoch,
                redelivered,
                ..
            } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"split-rejoined\",\"group\":{name},\"fork_epoch\":{fork_epoch},\"epoch\":{epoch},\"resent\":{}}}",
                redelivered.len()
            ),
            Event::ResendWithheld { ids, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"resend-withheld\",\"group\":{name},\"ids\":{}}}",
                ids.len()
            ),
            Event::RedeliveryAsked { ids, .. } | Event::RedeliveryAnswered { ids, .. } => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":\"{}\",\"group\":{name},\"ids\":{}}}",
                if matches!(event, Event::RedeliveryAsked { .. }) {
                    "redelivery-asked"
                } else {
                    "redelivered-on-ask"
                },
                ids.len()
            ),
            other => format!(
                "{{\"t\":{t},\"n\":{n},\"ev\":{}}}",
                json_str(&format!("{other:?}"))
            ),
        }
    }

    /// Node `n` is in group `g` (created or joined): follow its topic, read its view.
    fn joined(&mut self, n: NodeId, g: usize, gref: GroupRef, epoch: u64) {
        let creator = self.groups[g].members.first() == Some(&n) && epoch == 0;
        if !creator {
            self.metrics.welcomes_joined += 1;
        }
        let status = self.nodes[n]
            .engine
            .as_ref()
            .and_then(|e| e.group_status(gref));
        let v = self.views.entry((g, n)).or_default();
        v.in_group = true;
        v.left_at = None;
        v.epoch = epoch;
        if let Some(s) = status {
            v.branch = s.branch_id;
            v.epoch = s.epoch;
            let members = s.members.clone();
            self.set_members(n, g, &members);
        }
        self.state_changed(n, g);
        self.subscribe(n, gref.topic());
    }

    fn set_members(&mut self, n: NodeId, g: usize, members: &[Vec<u8>]) {
        let ids = members
            .iter()
            .filter_map(|m| self.by_identity.get(m).copied())
            .collect();
        let me = self.nodes[n].identity.clone();
        let v = self.views.entry((g, n)).or_default();
        v.members = ids;
        let inside = members.contains(&me);
        if inside && !v.in_group {
            v.left_at = None;
        }
        if !inside && v.in_group {
            v.left_at = Some(self.now);
        }
        v.in_group = inside;
    }

    /// The envelope ids node `n` has but its engine has not processed, oldest first.
    pub(crate) fn unprocessed(&self, n: NodeId) -> Vec<EnvIx> {
        let node = &self.nodes[n];
        let mut v: Vec<(u64, [u8; 32], EnvIx)> = node
            .seen
            .iter()
            .filter(|ix| !node.processed.contains(*ix))
            .filter_map(|ix| self.envs.get(ix as usize).map(|e| (e.origin, e.id, ix)))
            .collect();
        v.sort_unstable();
        v.into_iter().map(|(_, _, ix)| ix).collect()
    }
}

/// The group an engine event is about, if any.
fn event_group(event: &Event) -> Option<GroupRef> {
    match event {
        Event::GroupJoined { group, .. }
        | Event::Message { group, .. }
        | Event::EpochChanged { group, .. }
        | Event::MembershipChanged { group, .. }
        | Event::ForkDetected { group, .. }
        | Event::ForkBeyondWindow { group, .. }
        | Event::SplitHealed { group, .. }
        | Event::SplitRejoined { group, .. }
        | Event::RedeliveryAsked { group, .. }
        | Event::RedeliveryAnswered { group, .. }
        | Event::ResendWithheld { group, .. }
        | Event::BranchSwitched { group, .. }
        | Event::Readded { group, .. }
        | Event::JoinLost { group }
        | Event::Removed { group }
        | Event::Dropped { group, .. } => Some(*group),
        Event::Rejected { group, .. } => *group,
        _ => None,
    }
}
