/// How durable an acknowledged write is.
public enum SyncPolicy: String, Sendable, Codable {
    /// `fsync` before `upsert`/`delete` returns (concurrent writers share one fsync). Survives power loss.
    case always
    /// Written to the operating system before returning (survives a process crash);
    /// `fsync` at most every `DatabaseOptions.syncInterval`.
    case batched
    /// Written to the operating system; `fsync` only on flush and close. For bulk loads.
    case none
}
