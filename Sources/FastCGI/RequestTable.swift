/// The active requests of one connection, keyed by request id.
///
/// Usually one or a handful of requests are active (nginx does not multiplex), so ids are found
/// by scanning a small array; past 16 active ids a dictionary index is kept as well, so 1024
/// multiplexed requests stay O(1). States live in a plain array so reading a flag never copies a
/// request's buffers (a dictionary's value getter would).
struct RequestTable: Sendable {
    /// Ids are indexed by a dictionary while more than this many are active.
    static let linearLimit = 16

    private(set) var ids: [UInt16] = []
    var states: [RequestDecoder.RequestState] = []
    private var index: [UInt16: Int] = [:]
    private var indexed = false

    var count: Int { ids.count }

    /// The position of `id` in `states`, or nil if it is not active.
    @inline(__always)
    func find(_ id: UInt16) -> Int? {
        if indexed { return index[id] }
        return ids.withUnsafeBufferPointer { ids in
            var position = 0
            while position < ids.count {
                if ids[position] == id { return position }
                position &+= 1
            }
            return nil
        }
    }

    /// Adds `id` (which must not be active) with fresh state; returns its position.
    @discardableResult
    mutating func insert(_ id: UInt16) -> Int {
        let position = ids.count
        ids.append(id)
        states.append(RequestDecoder.RequestState())
        if indexed {
            index[id] = position
        } else if ids.count > Self.linearLimit {
            for (position, id) in ids.enumerated() { index[id] = position }
            indexed = true
        }
        return position
    }

    /// Removes the request at `position`; the last request moves into its place.
    mutating func remove(at position: Int) {
        let last = ids.count &- 1
        if indexed {
            index[ids[position]] = nil
            if position != last { index[ids[last]] = position }
        }
        if position != last {
            ids.swapAt(position, last)
            states.swapAt(position, last)
        }
        ids.removeLast()
        states.removeLast()
        if indexed, ids.count <= Self.linearLimit / 2 {
            index.removeAll(keepingCapacity: true)
            indexed = false
        }
    }
}
