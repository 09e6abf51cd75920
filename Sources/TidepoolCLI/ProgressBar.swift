import Foundation

/// A one-line progress bar with rate and ETA, drawn on standard error only when it is a
/// terminal, at most ten times a second.
final class ProgressBar {
    enum Unit {
        case vectors, bytes
    }

    var total: Int
    let unit: Unit
    let enabled = isatty(2) != 0
    let start = monotonicSeconds()
    var lastDraw = 0.0

    init(total: Int, unit: Unit) {
        self.total = total
        self.unit = unit
    }

    /// For callers that learn the total as they go (`Backup.create` reports both).
    func update(_ done: Int, _ total: Int) {
        self.total = total
        update(done)
    }

    func update(_ done: Int) {
        guard enabled else { return }
        let now = monotonicSeconds()
        if now - lastDraw < 0.1 && done < total { return }
        lastDraw = now
        let rate = Double(done) / max(now - start, 1e-9)
        let eta = rate > 0 ? Double(total - done) / rate : 0
        let width = 30
        let filled = total > 0 ? min(width, width * done / total) : width
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        let amount: String
        switch unit {
        case .vectors: amount = String(format: "%d/%d %.0f vec/s", done, total, rate)
        case .bytes: amount = String(format: "%.1f/%.1f MB %.0f MB/s", Double(done) / 1e6, Double(total) / 1e6, rate / 1e6)
        }
        let line = String(format: "\r[%@] %5.1f%% %@ ETA %.0fs ", bar, 100 * Double(done) / Double(max(total, 1)), amount, eta)
        FileHandle.standardError.write(Data(line.utf8))
    }

    func finish() {
        if enabled && lastDraw > 0 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}
