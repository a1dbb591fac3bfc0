//! PC/SC: readers, card presence and ATRs, and hot-plug events, through the `pcsc` crate.
//!
//! This is also how certauth tells a user that the smart card service is down: OpenSC then reports
//! zero slots and no error at all.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::Duration;

use pcsc::{Context, ReaderState, Scope, State, PNP_NOTIFICATION};
use serde::Serialize;

/// One reader and its card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReaderInfo {
    pub name: String,
    pub card_present: bool,
    /// The card's answer-to-reset, when a card is present.
    #[serde(serialize_with = "serialize_atr")]
    pub atr: Option<Vec<u8>>,
}

fn serialize_atr<S: serde::Serializer>(atr: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match atr {
        Some(bytes) => s.serialize_some(&crate::x509::hex(bytes)),
        None => s.serialize_none(),
    }
}

/// What PC/SC looks like from here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcscStatus {
    Running {
        readers: Vec<ReaderInfo>,
    },
    /// No pcscd (or WinSCard service) to talk to.
    NotRunning,
    /// It answered, but with an error.
    Failed(String),
}

impl PcscStatus {
    /// A sentence for the user.
    pub fn describe(&self) -> String {
        match self {
            Self::Running { readers } if readers.is_empty() => {
                "the smart card service is running, with no reader attached".to_owned()
            }
            Self::Running { readers } => format!(
                "the smart card service is running with {} reader(s)",
                readers.len()
            ),
            Self::NotRunning => "the smart card service (pcscd) is not running, so no smart card reader can be seen; start it (e.g. `systemctl start pcscd`). Tokens that need no reader, such as SoftHSM, are still listed".to_owned(),
            Self::Failed(why) => format!("the smart card service failed: {why}"),
        }
    }

    /// The events that would bring a watcher that saw nothing to this state: the service
    /// stopped, or each reader added and each card in one inserted.
    pub fn as_events(&self) -> Vec<ReaderEvent> {
        match self {
            Self::Running { readers } => readers
                .iter()
                .flat_map(|r| {
                    let added = ReaderEvent::ReaderAdded {
                        reader: r.name.clone(),
                    };
                    let card = r.atr.clone().map(|atr| ReaderEvent::CardInserted {
                        reader: r.name.clone(),
                        atr,
                    });
                    std::iter::once(added).chain(card)
                })
                .collect(),
            Self::NotRunning => vec![ReaderEvent::ServiceStopped],
            Self::Failed(_) => Vec::new(),
        }
    }
}

/// Lists the readers and their cards.
pub fn status() -> PcscStatus {
    let context = match Context::establish(Scope::User) {
        Ok(context) => context,
        Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => return PcscStatus::NotRunning,
        Err(e) => return PcscStatus::Failed(e.to_string()),
    };
    match read_states(&context) {
        Ok(readers) => PcscStatus::Running { readers },
        Err(pcsc::Error::NoService | pcsc::Error::ServiceStopped) => PcscStatus::NotRunning,
        Err(e) => PcscStatus::Failed(e.to_string()),
    }
}

fn reader_names(context: &Context) -> Result<Vec<CString>, pcsc::Error> {
    match context.list_readers_owned() {
        Ok(names) => Ok(names),
        Err(pcsc::Error::NoReadersAvailable) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

fn read_states(context: &Context) -> Result<Vec<ReaderInfo>, pcsc::Error> {
    let mut states: Vec<ReaderState> = reader_names(context)?
        .into_iter()
        .map(|name| ReaderState::new(name, State::UNAWARE))
        .collect();
    if !states.is_empty() {
        context.get_status_change(Duration::ZERO, &mut states)?;
    }
    Ok(states.iter().map(reader_info).collect())
}

fn reader_info(state: &ReaderState) -> ReaderInfo {
    let present = state.event_state().contains(State::PRESENT);
    ReaderInfo {
        name: state.name().to_string_lossy().into_owned(),
        card_present: present,
        atr: present.then(|| state.atr().to_vec()),
    }
}

/// Something that changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    ServiceStarted,
    ServiceStopped,
    ReaderAdded { reader: String },
    ReaderRemoved { reader: String },
    CardInserted { reader: String, atr: Vec<u8> },
    CardRemoved { reader: String },
}

impl ReaderEvent {
    /// Whether tokens may have come or gone.
    pub fn changes_cards(&self) -> bool {
        !matches!(self, Self::ServiceStarted)
    }
}

impl std::fmt::Display for ReaderEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ServiceStarted => f.write_str("smart card service started"),
            Self::ServiceStopped => f.write_str("smart card service stopped"),
            Self::ReaderAdded { reader } => write!(f, "reader added: {reader}"),
            Self::ReaderRemoved { reader } => write!(f, "reader removed: {reader}"),
            Self::CardInserted { reader, atr } => {
                write!(f, "card inserted: {reader} (ATR {})", crate::x509::hex(atr))
            }
            Self::CardRemoved { reader } => write!(f, "card removed: {reader}"),
        }
    }
}

/// Follows readers and cards, reporting differences from what it saw last.
pub struct Watcher {
    context: Option<Context>,
    /// Card presence by reader name.
    known: BTreeMap<String, Option<Vec<u8>>>,
}

impl Default for Watcher {
    fn default() -> Self {
        Self::new()
    }
}

impl Watcher {
    pub fn new() -> Self {
        Self {
            context: None,
            known: BTreeMap::new(),
        }
    }

    /// What the watcher currently knows: reader names and ATRs of present cards.
    pub fn readers(&self) -> impl Iterator<Item = (&str, Option<&[u8]>)> {
        self.known
            .iter()
            .map(|(name, atr)| (name.as_str(), atr.as_deref()))
    }

    /// Whether the smart card service is reachable right now.
    pub fn service_running(&self) -> bool {
        self.context.is_some()
    }

    /// Waits up to `timeout` for changes and returns them (empty on timeout). The first call
    /// reports the readers and cards already there as added and inserted.
    pub fn poll(&mut self, timeout: Duration) -> Vec<ReaderEvent> {
        let mut events = Vec::new();
        if self.context.is_none() {
            match Context::establish(Scope::User) {
                Ok(context) => {
                    self.context = Some(context);
                    events.push(ReaderEvent::ServiceStarted);
                }
                Err(_) => {
                    // No service: look again after the timeout.
                    std::thread::sleep(timeout);
                    return events;
                }
            }
        }
        match self.wait(timeout) {
            Ok(()) => {}
            Err(
                pcsc::Error::NoService | pcsc::Error::ServiceStopped | pcsc::Error::InvalidHandle,
            ) => {
                self.context = None;
                for (reader, atr) in std::mem::take(&mut self.known) {
                    if atr.is_some() {
                        events.push(ReaderEvent::CardRemoved {
                            reader: reader.clone(),
                        });
                    }
                    events.push(ReaderEvent::ReaderRemoved { reader });
                }
                events.push(ReaderEvent::ServiceStopped);
                return events;
            }
            Err(e) => tracing::debug!(error = %e, "SCardGetStatusChange"),
        }
        events.extend(self.refresh());
        events
    }

    /// Blocks until something changes relative to `known`, or the timeout.
    fn wait(&mut self, timeout: Duration) -> Result<(), pcsc::Error> {
        let Some(context) = &self.context else {
            return Ok(());
        };
        if reader_names(context)?.len() != self.known.len() {
            return Ok(());
        }
        let mut states: Vec<ReaderState> = self
            .known
            .keys()
            .filter_map(|name| CString::new(name.as_str()).ok())
            .map(|name| ReaderState::new(name, State::UNAWARE))
            .collect();
        // The PnP pseudo-reader reports readers coming and going.
        states.push(ReaderState::new(PNP_NOTIFICATION(), State::UNAWARE));
        // Learn the current states (and pcsc-lite's event counters) first, so the blocking call
        // below waits for a change from now rather than returning at once.
        context
            .get_status_change(Duration::ZERO, &mut states)
            .or_else(ignore_timeout)?;
        let changed_meanwhile = states
            .iter()
            .zip(self.known.values())
            .any(|(state, atr)| state.event_state().contains(State::PRESENT) != atr.is_some());
        if changed_meanwhile {
            return Ok(());
        }
        for state in &mut states {
            state.sync_current_state();
        }
        context
            .get_status_change(timeout, &mut states)
            .or_else(ignore_timeout)
    }

    /// Re-reads every reader and reports what differs from `known`.
    fn refresh(&mut self) -> Vec<ReaderEvent> {
        let Some(context) = &self.context else {
            return Vec::new();
        };
        let readers = match read_states(context) {
            Ok(readers) => readers,
            Err(e) => {
                tracing::debug!(error = %e, "reading reader states");
                return Vec::new();
            }
        };
        let mut events = Vec::new();
        let now: BTreeMap<String, Option<Vec<u8>>> =
            readers.into_iter().map(|r| (r.name, r.atr)).collect();
        for (reader, atr) in &self.known {
            match now.get(reader) {
                None => {
                    if atr.is_some() {
                        events.push(ReaderEvent::CardRemoved {
                            reader: reader.clone(),
                        });
                    }
                    events.push(ReaderEvent::ReaderRemoved {
                        reader: reader.clone(),
                    });
                }
                Some(new_atr) if atr.is_some() && new_atr.is_none() => {
                    events.push(ReaderEvent::CardRemoved {
                        reader: reader.clone(),
                    })
                }
                Some(Some(new_atr)) if atr.as_ref() != Some(new_atr) => {
                    if atr.is_some() {
                        // A different card replaced the old one between two looks.
                        events.push(ReaderEvent::CardRemoved {
                            reader: reader.clone(),
                        });
                    }
                    events.push(ReaderEvent::CardInserted {
                        reader: reader.clone(),
                        atr: new_atr.clone(),
                    });
                }
                Some(_) => {}
            }
        }
        for (reader, atr) in &now {
            if !self.known.contains_key(reader) {
                events.push(ReaderEvent::ReaderAdded {
                    reader: reader.clone(),
                });
                if let Some(atr) = atr {
                    events.push(ReaderEvent::CardInserted {
                        reader: reader.clone(),
                        atr: atr.clone(),
                    });
                }
            }
        }
        self.known = now;
        events
    }
}

fn ignore_timeout(e: pcsc::Error) -> Result<(), pcsc::Error> {
    match e {
        pcsc::Error::Timeout | pcsc::Error::UnknownReader => Ok(()),
        other => Err(other),
    }
}
