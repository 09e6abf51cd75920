import Foundation
import Logging

/// Structured log lines in logfmt (`ts=… level=info logger=tidepool msg="…" hb.request.id=…`),
/// one per message, on standard error.
///
/// Metadata is stored as given and only formatted when a line is written: the server attaches
/// a request id to every request's logger, and swift-log's `StreamLogHandler` re-renders all
/// metadata on each such change, which cost more CPU per query than parsing the request.
public struct LogfmtLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public let label: String
    private static let output = NSLock()  // whole lines, never interleaved

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(
        level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?,
        source: String, file: String, function: String, line: UInt
    ) {
        var all = metadata
        if let explicit { all.merge(explicit) { $1 } }
        var text = "ts=\(Date().formatted(.iso8601)) level=\(level) logger=\(label) msg=\(Self.quoted(message.description))"
        for key in all.keys.sorted() { text += " \(key)=\(Self.quoted(all[key]!.description))" }
        text += "\n"
        Self.output.withLock { FileHandle.standardError.write(Data(text.utf8)) }
    }

    /// Bare when the value has no space, quote, `=` or control character; quoted and escaped otherwise.
    static func quoted(_ s: String) -> String {
        if !s.isEmpty,
            !s.utf8.contains(where: { $0 <= 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: "\\") })
        {
            return s
        }
        var out = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            default: if ch.value < 0x20 { out += String(format: "\\u%04x", ch.value) } else { out.unicodeScalars.append(ch) }
            }
        }
        return out + "\""
    }
}
