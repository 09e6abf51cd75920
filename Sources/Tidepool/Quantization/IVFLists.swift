/// Rows grouped into IVF lists, as a list codec's encoder (`PQCodes`, `RaBitQCodes`) sees them:
/// which rows each list holds, in order, and its centroid. Built by `IVFFormat`.
struct IVFLists {
    /// `nlist + 1` offsets into `order`.
    let offsets: [UInt32]
    /// Row numbers, list by list.
    let order: [UInt32]
    /// `nlist × dimension` row-major.
    let centroids: [Float]
    let dimension: Int

    var nlist: Int { offsets.count - 1 }
    var rows: Int { order.count }
    func list(_ l: Int) -> Range<Int> { Int(offsets[l])..<Int(offsets[l + 1]) }
}
