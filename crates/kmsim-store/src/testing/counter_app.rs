//! [`CounterApp`]: named counters, the smallest useful [`Application`].

use std::collections::BTreeMap;

use crate::application::AppRecords;
use crate::application::AppWrite;
use crate::application::Application;
use crate::application::Applied;

/// Named u64 counters.
///
/// A command is `name ++ amount` where `amount` is the last 8 bytes, a big-endian u64 (so the
/// shortest command, exactly 8 bytes, adds to the counter with the empty name). Applying it
/// adds `amount` (wrapping) to the counter, persists one record `name -> sum (u64 BE)` and
/// answers the new sum as u64 BE. A command shorter than 8 bytes changes nothing and answers
/// empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CounterApp {
    /// Current sums by counter name.
    counters: BTreeMap<Vec<u8>, u64>,
    /// Log index of the last applied command since the last `open` (not persisted; for tests).
    last_index: Option<u64>,
}

impl CounterApp {
    /// An app with no counters.
    pub fn new() -> Self {
        Self::default()
    }

    /// The command adding `amount` to counter `name`.
    pub fn command(name: &[u8], amount: u64) -> Vec<u8> {
        let mut payload = name.to_vec();
        payload.extend_from_slice(&amount.to_be_bytes());
        payload
    }

    /// The new sum carried by a response, if it has the expected shape.
    pub fn decode_response(response: &[u8]) -> Option<u64> {
        Some(u64::from_be_bytes(response.try_into().ok()?))
    }

    /// The current sum of counter `name`.
    pub fn get(&self, name: &[u8]) -> Option<u64> {
        self.counters.get(name).copied()
    }

    /// All counters, ascending by name.
    pub fn counters(&self) -> &BTreeMap<Vec<u8>, u64> {
        &self.counters
    }

    /// Log index of the last command applied since the last `load`.
    pub fn last_index(&self) -> Option<u64> {
        self.last_index
    }
}

impl CounterApp {
    /// Replaces the counters with persisted records (name → u64 BE).
    pub fn load(&mut self, records: Vec<(Vec<u8>, Vec<u8>)>) -> Result<(), String> {
        self.last_index = None;
        self.counters = records
            .into_iter()
            .map(|(name, value)| {
                let sum = value
                    .as_slice()
                    .try_into()
                    .map_err(|_| format!("counter record of {} bytes", value.len()))?;
                Ok((name, u64::from_be_bytes(sum)))
            })
            .collect::<Result<_, String>>()?;
        Ok(())
    }

    fn apply_command(&mut self, log_index: u64, payload: &[u8]) -> Applied {
        self.last_index = Some(log_index);
        let Some(split) = payload.len().checked_sub(8) else {
            return Applied::default();
        };
        let (name, amount) = payload.split_at(split);
        let mut be = [0u8; 8];
        be.copy_from_slice(amount);
        let sum = self.counters.entry(name.to_vec()).or_insert(0);
        *sum = sum.wrapping_add(u64::from_be_bytes(be));
        Applied {
            response: sum.to_be_bytes().to_vec(),
            writes: vec![AppWrite::Put {
                key: name.to_vec(),
                value: sum.to_be_bytes().to_vec(),
            }],
        }
    }
}

/// Counter records read per call when opening.
const OPEN_PAGE: usize = 1024;

/// The app keeps every counter in memory (a handful in tests): opening reads them all.
impl Application for CounterApp {
    fn open(&mut self, records: AppRecords) -> Result<Vec<AppWrite>, String> {
        let all = records
            .scan_all(&[], &[], OPEN_PAGE)
            .map_err(|e| e.to_string())?;
        self.load(all)?;
        Ok(Vec::new())
    }

    fn apply(&mut self, log_index: u64, payload: &[u8]) -> Result<Applied, String> {
        Ok(self.apply_command(log_index, payload))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_add_and_report_the_new_sum() {
        let mut app = CounterApp::new();
        let first = app.apply_command(1, &CounterApp::command(b"a", 5));
        let second = app.apply_command(2, &CounterApp::command(b"a", 7));
        assert_eq!(CounterApp::decode_response(&first.response), Some(5));
        assert_eq!(CounterApp::decode_response(&second.response), Some(12));
        assert_eq!(
            second.writes,
            vec![AppWrite::Put {
                key: b"a".to_vec(),
                value: 12u64.to_be_bytes().to_vec()
            }]
        );
        assert_eq!(app.apply_command(3, b"short"), Applied::default());
        assert_eq!(app.get(b"a"), Some(12));
    }

    #[test]
    fn load_rebuilds_from_records() {
        let mut app = CounterApp::new();
        app.apply_command(1, &CounterApp::command(b"x", 3));
        let mut other = CounterApp::new();
        other
            .load(vec![(b"x".to_vec(), 3u64.to_be_bytes().to_vec())])
            .unwrap();
        assert!(CounterApp::new()
            .load(vec![(b"y".to_vec(), vec![1, 2])])
            .is_err());
        assert_eq!(other.counters(), app.counters());
    }
}
