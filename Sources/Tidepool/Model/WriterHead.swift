/// What a writer on object storage has committed, as it answers a query node
/// (`Database.writerHead(collection:)`): a query node holding at least this state answers a
/// strong read without asking the store anything.
public struct WriterHead: Sendable, Equatable {
    /// The manifest version the writer committed last.
    public var manifestVersion: UInt64
    /// The collection's last acknowledged WAL sequence number.
    public var walHead: UInt64

    public init(manifestVersion: UInt64, walHead: UInt64) {
        self.manifestVersion = manifestVersion
        self.walHead = walHead
    }

    /// Whether a node at this position holds everything `other` reports: the same manifest
    /// version or a later one, and the same sequence number or a later one.
    public func covers(_ other: WriterHead) -> Bool {
        manifestVersion >= other.manifestVersion && walHead >= other.walHead
    }
}
