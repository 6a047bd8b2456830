//! Contacts, and the lookups that find people and their KeyPackages: invite codes at once,
//! DNS names and handles (DHT) on other tasks, whose results come back as [`Found`].

use identity_tofu::{Address, SafetyNumber, SignedDeviceCertificate};
use tokio::sync::oneshot;

use super::{Core, PendingInvite, check_name, json, now_ms};
use crate::api::views::{ContactView, VerifyView};
use crate::api::{ApiError, ApiResult};
use crate::daemon::lookups::{self, Found};
use crate::daemon::present;
use crate::invite_code::InviteCode;
use crate::store::ContactRecord;
use ds_p2p::engine::Command;
use ds_p2p::wire::inbox_topic;

impl Core {
    /// An invite code is added at once; a DNS name or a handle is looked up on another task,
    /// and answered when [`Found::Contact`] comes back.
    pub(super) async fn start_add_contact(
        &mut self,
        now: u64,
        address: &str,
        name: Option<String>,
        reply: oneshot::Sender<ApiResult>,
    ) {
        let address = address.trim().to_string();
        let found = self.found.clone();
        if InviteCode::looks_like(&address) {
            let result = match InviteCode::decode(&address) {
                Ok(code) => self.finish_add_contact(now, code, None, name).await,
                Err(e) => Err(ApiError::bad(e.to_string())),
            };
            self.answer(reply, result.map(|v| json(&v)));
            return;
        }
        if crate::lookup::looks_like_dns_name(&address) {
            let dns = self.dns.clone();
            tokio::spawn(async move {
                let code = crate::lookup::resolve_dns_contact(&address, &dns)
                    .await
                    .map_err(|e| e.to_string());
                let dns_name = Some(address.trim_end_matches('.').to_ascii_lowercase());
                let _ = found.send(Found::Contact {
                    code,
                    dns_name,
                    name,
                    reply,
                });
            });
            return;
        }
        let handle = address.trim_start_matches('@').to_string();
        if identity_tofu::handle::validate_handle(&handle).is_ok() {
            let net = self.net.clone();
            tokio::spawn(async move {
                let code = lookups::handle_lookup(net, handle).await;
                let _ = found.send(Found::Contact {
                    code,
                    dns_name: None,
                    name,
                    reply,
                });
            });
            return;
        }
        self.answer(
            reply,
            Err(ApiError::bad(format!(
                "{address:?} is not an invite code (chorus1…), a DNS name (alice.example.org) or \
                 a handle"
            ))),
        );
    }

    /// A lookup finished on another task.
    pub async fn on_found(&mut self, found: Found) {
        let now = now_ms();
        self.flush_sends(now).await;
        match found {
            Found::Contact {
                code,
                dns_name,
                name,
                reply,
            } => {
                let result = match code {
                    Ok(code) => self
                        .finish_add_contact(now, code, dns_name, name)
                        .await
                        .map(|v| json(&v)),
                    Err(e) => Err(ApiError::not_found(e)),
                };
                self.answer(reply, result);
            }
            Found::Bundle { nonce, record } => {
                let Some(bundle) = record.as_deref().and_then(lookups::decode_bundle) else {
                    return;
                };
                let Some(pending) = self.pending_invites.get(&nonce) else {
                    return;
                };
                let kp_owner = ds_p2p::directory::key_package_owner(&bundle.last_resort);
                if bundle.owner != pending.contact || kp_owner.as_ref() != Ok(&pending.contact) {
                    tracing::warn!("a DHT KeyPackage bundle under a contact's key is not theirs");
                    return;
                }
                let pending = self.pending_invites.remove(&nonce).expect("checked above");
                tracing::info!("inviting with the contact's last-resort KeyPackage from the DHT");
                self.finish_invite(now, pending, bundle.last_resort).await;
            }
        }
    }

    pub(super) async fn finish_invite(
        &mut self,
        now: u64,
        pending: PendingInvite,
        key_package: Vec<u8>,
    ) {
        let result = self
            .run_command(
                now,
                Command::Invite {
                    group: pending.group,
                    key_package,
                },
            )
            .await
            .and_then(|_| self.group_view(pending.group).map(|v| json(&v)));
        self.answer(pending.reply, result);
    }

    /// Publishes this node's handle record and last-resort KeyPackage bundle in the DHT (at
    /// start, and when the last-resort KeyPackage was used).
    pub async fn publish_records(&mut self, now: u64) {
        let bundle = match self.engine.key_package_bundle(now, 0) {
            Ok(b) => lookups::encode_bundle(&b),
            Err(e) => {
                tracing::warn!(error = %e, "cannot make a KeyPackage bundle");
                return;
            }
        };
        let code = match self.id_view().await {
            Ok(id) => id.invite_code,
            Err(e) => {
                tracing::warn!(error = %e, "cannot make an invite code");
                return;
            }
        };
        let records = [
            (lookups::handle_key(self.me.handle()), code.into_bytes()),
            (lookups::bundle_key(&self.me.fingerprint()), bundle),
        ];
        let net = self.net.clone();
        tokio::spawn(async move {
            for (key, value) in records {
                if let Err(e) = net.put_record(key, value).await {
                    tracing::info!(error = %e, "DHT record not stored yet (no peers?)");
                }
            }
        });
    }

    pub(super) async fn finish_add_contact(
        &mut self,
        now: u64,
        code: InviteCode,
        dns_name: Option<String>,
        name: Option<String>,
    ) -> Result<ContactView, ApiError> {
        let cert = code
            .signed_certificate()
            .map_err(|e| ApiError::bad(e.to_string()))?;
        let c = cert.certificate();
        if c.identity_key == self.me.identity_public() {
            return Err(ApiError::bad("that is your own invite code"));
        }
        let name = name.unwrap_or_else(|| c.handle.clone());
        check_name("contact name", &name)?;
        // TOFU pins the handle the way group members are pinned, so the engine's checks of
        // group credentials and the contact list agree.
        let tofu = Address::Handle(c.handle.clone());
        let mut seen = self
            .trust
            .observe(&tofu, &c.identity_key, &c.device_key, now)
            .map_err(ApiError::internal)?;
        // A DNS name is an address of its own: a changed key behind the name is a key change
        // even if the handle is new.
        if let Some(name) = &dns_name
            && seen.is_accepted()
        {
            seen = self
                .trust
                .observe(
                    &Address::DnsName(name.clone()),
                    &c.identity_key,
                    &c.device_key,
                    now,
                )
                .map_err(ApiError::internal)?;
        }
        let record = ContactRecord {
            name: name.clone(),
            address: tofu,
            certificate: code.certificate.clone(),
            peer_id: code.peer_id.clone(),
            addrs: code.addrs.clone(),
            added_at_ms: now,
        };
        if !seen.is_accepted() {
            return Err(ApiError::conflict(format!(
                "KEY CHANGE: {} was pinned to another identity key; this code offers {}. \
                 Compare safety numbers with them, then `chorus contact accept-key {name}`",
                c.handle,
                c.identity_key.fingerprint()
            )));
        }
        self.store
            .put_contact(&record)
            .map_err(ApiError::internal)?;
        self.subscribe(inbox_topic(&record.certificate))
            .await
            .map_err(ApiError::internal)?;
        for addr in &code.addrs {
            let full = format!("{addr}/p2p/{}", code.peer_id);
            if let Ok(ma) = full.parse() {
                let _ = self.net.dial(ma).await;
            }
        }
        self.contact_view(&record)
    }

    pub(super) fn resolve_contact(&self, text: &str) -> Result<ContactRecord, ApiError> {
        let contacts = self.store.contacts().map_err(ApiError::internal)?;
        if let Some(c) = contacts.iter().find(|c| c.name == text) {
            return Ok(c.clone());
        }
        let by_handle: Vec<_> = contacts
            .iter()
            .filter(|c| {
                SignedDeviceCertificate::decode(&c.certificate)
                    .is_ok_and(|s| s.certificate().handle == text)
            })
            .collect();
        if let [one] = by_handle.as_slice() {
            return Ok((*one).clone());
        }
        Err(ApiError::not_found(format!(
            "no contact {text:?} (see `chorus contact list`; add one with `chorus contact add <invite-code>`)"
        )))
    }

    pub(super) fn contact_view(&self, record: &ContactRecord) -> Result<ContactView, ApiError> {
        let who = present::member(&record.certificate);
        let tofu = self
            .trust
            .contact(&record.address)
            .map_err(ApiError::internal)?;
        Ok(ContactView {
            name: record.name.clone(),
            handle: who.handle,
            fingerprint: tofu
                .as_ref()
                .map(|c| c.fingerprint().to_hex())
                .unwrap_or(who.fingerprint),
            address: record.address.to_string(),
            peer_id: record.peer_id.clone(),
            verified: tofu.as_ref().is_some_and(|c| c.is_verified()),
            pending_key_change: tofu
                .and_then(|c| c.pending_key_change)
                .map(|p| p.offered.fingerprint().to_hex()),
        })
    }

    pub(super) fn contact_views(&self) -> Result<Vec<ContactView>, ApiError> {
        self.store
            .contacts()
            .map_err(ApiError::internal)?
            .iter()
            .map(|c| self.contact_view(c))
            .collect()
    }

    pub(super) fn verify(
        &mut self,
        now: u64,
        contact: &str,
        typed: Option<String>,
    ) -> Result<VerifyView, ApiError> {
        let record = self.resolve_contact(contact)?;
        let pinned = self
            .trust
            .contact(&record.address)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found("contact has no pinned key"))?;
        let number = SafetyNumber::new(&self.me.identity_public(), &pinned.identity_key);
        let verified = match typed {
            None => pinned.is_verified(),
            Some(typed) => {
                self.trust
                    .verify(&record.address, &typed, &self.me.identity_public(), now)
                    .map_err(|e| ApiError::conflict(format!("not verified: {e}")))?;
                true
            }
        };
        Ok(VerifyView {
            contact: record.name,
            safety_number: number.to_string(),
            verified,
        })
    }

    pub(super) fn accept_key(&mut self, now: u64, contact: &str) -> Result<ContactView, ApiError> {
        let record = self.resolve_contact(contact)?;
        let pending = self
            .trust
            .contact(&record.address)
            .map_err(ApiError::internal)?
            .and_then(|c| c.pending_key_change)
            .ok_or_else(|| ApiError::conflict(format!("no key change is pending for {contact}")))?;
        self.trust
            .accept_key_change(&record.address, &pending.offered, now)
            .map_err(ApiError::internal)?;
        self.contact_view(&record)
    }
}
