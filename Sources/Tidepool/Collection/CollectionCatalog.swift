/// Where a collection records its state: its entry in the database's manifest, replaced
/// atomically with the whole manifest. `Database` is the catalog; the collection holds it weakly.
protocol CollectionCatalog: AnyObject, Sendable {
    /// Records a collection's new state (settings, segments, tombstones, flushed sequence) durably.
    func persist(collection entry: Manifest.CollectionEntry) throws
}
