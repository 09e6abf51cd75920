/// Where a collection records its state: its entry in the database's manifest, replaced
/// atomically with the whole manifest. `Database` is the catalog; the collection holds it weakly.
protocol CollectionCatalog: AnyObject, Sendable {
    /// Records a collection's new state (settings, segments, tombstones, flushed sequence) durably.
    /// Retired files with generation 0 are stamped with the new manifest's generation. Returns
    /// the entry as committed.
    @discardableResult
    func persist(collection entry: Manifest.CollectionEntry) throws -> Manifest.CollectionEntry
    /// The generation of the manifest last committed or loaded.
    var manifestGeneration: UInt64 { get }
}
