/// Where a collection records its state: its entry in the database's manifest, replaced
/// atomically with the whole manifest. `Database` is the catalog; the collection holds it weakly.
protocol CollectionCatalog: AnyObject, Sendable {
    /// Records a collection's new state (settings, segments, tombstones, flushed sequence) durably.
    /// Retired files with generation 0 are stamped with the new manifest's generation. With
    /// `newVersion` the entry gets the next version number and the time; without (a snapshot
    /// added or removed) it keeps the committed ones. Returns the entry as committed.
    @discardableResult
    func persist(collection entry: Manifest.CollectionEntry, newVersion: Bool) throws -> Manifest.CollectionEntry
    /// The generation of the manifest last committed or loaded.
    var manifestGeneration: UInt64 { get }
}
