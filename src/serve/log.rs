//! The log's lines: the access line of each request written by hand, everything else by
//! `tracing_subscriber`'s own formats.
//!
//! An access line is the same text `tracing_subscriber::fmt` writes (its full text format, or
//! its JSON), byte for byte but for the time it was taken; it is written without the
//! formatter's general machinery (styles that paint nothing when colours are off, a date
//! computed per line), which was about a tenth of the server's CPU under load. Any event this
//! does not know how to write as tracing would (another target or level, a message, a span
//! around it) goes to tracing's formatter.

use std::cell::RefCell;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target of the access lines.
pub const ACCESS: &str = "promptreg::access";

/// The lines' format: access lines by hand in `json` or text, other events by `other`.
#[derive(Debug, Clone)]
pub struct Lines<F> {
    other: F,
    json: bool,
}

impl<F> Lines<F> {
    /// Access lines as tracing's full text format (or its JSON, with `json`); `other` (the
    /// same format, as tracing builds it) writes every other event.
    pub fn new(other: F, json: bool) -> Self {
        Lines { other, json }
    }
}

impl<S, N, F> FormatEvent<S, N> for Lines<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if !is_plain_access(event) || ctx.lookup_current().is_some() {
            return self.other.format_event(ctx, writer, event);
        }
        write_access(writer, event, SystemTime::now(), self.json)
    }
}

/// An access event this file writes: the target, INFO, and fields that are only named values
/// (no message, no raw or `log.` names, which tracing writes its own ways).
fn is_plain_access(event: &Event<'_>) -> bool {
    let meta = event.metadata();
    meta.target() == ACCESS
        && *meta.level() == Level::INFO
        && meta.fields().iter().all(|f| {
            let name = f.name();
            name != "message" && !name.starts_with("r#") && !name.starts_with("log.")
        })
}

fn write_access(
    mut writer: Writer<'_>,
    event: &Event<'_>,
    now: SystemTime,
    json: bool,
) -> fmt::Result {
    match json {
        true => {
            writer.write_str("{\"timestamp\":\"")?;
            timestamp(&mut writer, now)?;
            writer.write_str("\",\"level\":\"INFO\",\"fields\":{")?;
            let mut fields = JsonFields {
                writer: &mut writer,
                first: true,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result?;
            writer.write_str("},\"target\":\"")?;
            writer.write_str(ACCESS)?;
            writer.write_str("\"}\n")
        }
        false => {
            timestamp(&mut writer, now)?;
            writer.write_str("  INFO ")?;
            writer.write_str(ACCESS)?;
            writer.write_str(": ")?;
            let mut fields = TextFields {
                writer: &mut writer,
                first: true,
                result: Ok(()),
            };
            event.record(&mut fields);
            fields.result?;
            writer.write_char('\n')
        }
    }
}

/// `2026-12-06T18:35:09.803984Z`, as tracing's `SystemTime` timer writes it. The part up to
/// the second is made once a second (per thread).
fn timestamp(out: &mut impl fmt::Write, now: SystemTime) -> fmt::Result {
    thread_local! {
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    // A clock before 1970 is written as 1970; tracing writes years beyond 9999 with a sign,
    // which a clock does not reach.
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    SECOND.with(|cell| {
        let mut cell = cell.borrow_mut();
        if cell.0 != secs {
            let mut text = crate::git::time::rfc3339(secs as i64, 0);
            text.truncate(19);
            *cell = (secs, text);
        }
        out.write_str(&cell.1)
    })?;
    let micros = since.subsec_micros();
    let mut digits = [b'0'; 8];
    digits[0] = b'.';
    digits[7] = b'Z';
    let mut rest = micros;
    for slot in digits[1..7].iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    // Only ASCII digits, a dot and a Z were written.
    out.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)
}

/// The fields as tracing's default text visitor writes them: `name=value`, space separated,
/// values in their `Debug` form (a `%` field's `Debug` is its `Display`).
struct TextFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl TextFields<'_, '_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        self.writer.write_str(field.name())?;
        self.writer.write_char('=')
    }
}

impl Visit for TextFields<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if self.result.is_ok() {
            self.result = self
                .name(field)
                .and_then(|()| write!(self.writer, "{value:?}"));
        }
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        if self.result.is_ok() {
            self.result = self
                .name(field)
                .and_then(|()| write!(self.writer, "{value}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| {
                match value
                    .bytes()
                    .all(|b| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\')
                {
                    true => {
                        self.writer.write_char('"')?;
                        self.writer.write_str(value)?;
                        self.writer.write_char('"')
                    }
                    false => write!(self.writer, "{value:?}"),
                }
            });
        }
    }
}

/// The fields as tracing's JSON format writes them: strings for `str` and `Debug` values,
/// numbers and booleans as such.
struct JsonFields<'a, 'w> {
    writer: &'a mut Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl JsonFields<'_, '_> {
    fn name(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(',')?;
        }
        json_string(self.writer, field.name())?;
        self.writer.write_char(':')
    }

    fn record(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| value(self.writer));
        }
    }
}

impl Visit for JsonFields<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.record(field, |w| json_string(w, &format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.record(field, |w| json_string(w, value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record(field, |w| write!(w, "{value}"));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, |w| {
            w.write_str(&serde_json::to_string(&value).map_err(|_| fmt::Error)?)
        });
    }
}

/// A JSON string as serde_json writes it (what tracing's JSON format uses).
fn json_string(out: &mut impl fmt::Write, text: &str) -> fmt::Result {
    out.write_str(&serde_json::to_string(text).map_err(|_| fmt::Error)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A writer the tests read back.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut all) = self.0.lock() {
                all.extend_from_slice(bytes);
            }
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            let all = self.0.lock().map(|b| b.clone()).unwrap_or_default();
            String::from_utf8_lossy(&all).into_owned()
        }
    }

    /// The events the server logs, and a few it does not, with awkward values.
    fn emit() {
        for (method, path, route, token) in [
            ("GET", "/v1/prompts/chat-reply", "/v1/prompts/{id}", "-"),
            ("POST", "/v1/render/a%22b\\c", "/v1/render/{id}", "ci bot"),
            ("DELETE", "/v1/prompts/\u{e9}t\u{e9}", "other", "t\"ok\nen"),
            ("GET", "/", "ui\t\u{1}\u{7f}", "\u{1f600}"),
        ] {
            tracing::info!(
                target: "promptreg::access",
                method = %method,
                path = %path,
                route,
                status = 304u16,
                micros = 12u64,
                token = %token,
            );
        }
        tracing::info!(target: "promptreg::access", token = %"ci", "signed in to the UI");
        tracing::warn!(target: "promptreg::access", route = "x", "warned");
        tracing::info!(target: "promptreg::serve", listening = true, at = 1.5f64, "other");
        let span = tracing::info_span!("around", id = 7);
        let _in = span.enter();
        tracing::info!(target: "promptreg::access", method = %"GET", status = 200u16);
    }

    /// The lines of `emit` through a subscriber: ours, or tracing's own format.
    fn lines(json: bool, ours: bool) -> Vec<String> {
        lines_with(json, ours, true)
    }

    /// With `level: false`, ours has a fallback that writes no level.
    fn lines_with(json: bool, ours: bool, level: bool) -> Vec<String> {
        let out = Captured::default();
        let sink = out.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_max_level(Level::INFO)
            .with_ansi(false);
        let dispatch = match (json, ours) {
            (false, false) => tracing::Dispatch::new(builder.finish()),
            (true, false) => tracing::Dispatch::new(builder.json().finish()),
            (false, true) => {
                let format = tracing_subscriber::fmt::format().with_level(level);
                tracing::Dispatch::new(builder.event_format(Lines::new(format, false)).finish())
            }
            (true, true) => {
                let format = tracing_subscriber::fmt::format().json().with_level(level);
                let builder = builder.json();
                tracing::Dispatch::new(builder.event_format(Lines::new(format, true)).finish())
            }
        };
        tracing::dispatcher::with_default(&dispatch, emit);
        out.text().lines().map(str::to_string).collect()
    }

    /// A line with its time taken out, and the time.
    fn split_time(line: &str, json: bool) -> (String, String) {
        let (start, end) = match json {
            true => {
                let start = line.find("\"timestamp\":\"").map_or(0, |at| at + 13);
                (start, line[start..].find('"').map_or(start, |n| start + n))
            }
            false if line.starts_with("20") => (0, line.find(' ').unwrap_or(0)),
            false => (0, line.len()),
        };
        let rest = format!("{}<time>{}", &line[..start], &line[end..]);
        (rest, line[start..end].to_string())
    }

    fn seconds_of(time: &str) -> f64 {
        // 2026-12-06T18:35:09.803984Z: the time of day is enough to compare two close times.
        let clock = &time[11..time.len() - 1];
        let parts: Vec<f64> = clock.split(':').filter_map(|p| p.parse().ok()).collect();
        parts.iter().fold(0.0, |acc, p| acc * 60.0 + p)
    }

    #[test]
    fn access_lines_are_tracings_own_lines() {
        for json in [false, true] {
            let theirs = lines(json, false);
            let ours = lines(json, true);
            // Eight events; in text, the token with a newline (a `%` value) takes two lines.
            assert_eq!(theirs.len(), if json { 8 } else { 9 }, "{theirs:#?}");
            assert_eq!(ours.len(), theirs.len(), "{ours:#?}");
            for (a, b) in theirs.iter().zip(&ours) {
                let (a_rest, a_time) = split_time(a, json);
                let (b_rest, b_time) = split_time(b, json);
                assert_eq!(a_rest, b_rest, "json: {json}");
                if a_rest == "<time>" {
                    // The rest of a line a newline cut: no time in it.
                    assert_eq!(a, b);
                    continue;
                }
                assert_eq!(a_time.len(), 27, "{a_time}");
                assert_eq!(b_time.len(), 27, "{b_time}");
                // Taken moments apart (on one day, unless the test ran across midnight).
                if a_time[..11] == b_time[..11] {
                    let apart = (seconds_of(&a_time) - seconds_of(&b_time)).abs();
                    assert!(apart < 5.0, "{a_time} {b_time}");
                }
            }
        }
    }

    #[test]
    fn access_lines_are_written_here_and_others_by_tracing() {
        for json in [false, true] {
            let lines = lines_with(json, true, false);
            let level = match json {
                true => "\"level\":\"INFO\"",
                false => " INFO promptreg::access: method=",
            };
            // The four access events (in text, one line of the third's two).
            let access: Vec<_> = match json {
                true => lines[..4].iter().collect(),
                false => lines[..5]
                    .iter()
                    .filter(|l| l.contains("method="))
                    .collect(),
            };
            assert_eq!(access.len(), 4, "{lines:#?}");
            for line in &access {
                assert!(line.contains(level), "{line}");
            }
            let signed_in = lines.iter().find(|l| l.contains("signed in"));
            assert!(signed_in.is_some_and(|l| !l.contains("INFO")), "{lines:#?}");
        }
    }

    #[test]
    fn times_are_written_as_tracing_writes_them() {
        let cases = [
            (0, 0, "1970-01-01T00:00:00.000000Z"),
            (951_827_696, 789_000, "2000-02-29T12:34:56.000789Z"),
            (1_796_582_109, 803_984_123, "2026-12-06T18:35:09.803984Z"),
            (253_402_300_799, 999_999_999, "9999-12-31T23:59:59.999999Z"),
        ];
        for (secs, nanos, expected) in cases {
            let at = UNIX_EPOCH + Duration::new(secs, nanos);
            let mut text = String::new();
            assert!(timestamp(&mut text, at).is_ok());
            assert_eq!(text, expected);
            // Again within the same second: from the kept part.
            let mut again = String::new();
            assert!(timestamp(&mut again, at).is_ok());
            assert_eq!(again, expected);
        }
    }
}
