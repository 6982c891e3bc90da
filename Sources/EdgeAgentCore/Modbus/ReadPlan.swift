/// The requests that read a device's tags: per area, tags sorted by address and coalesced into
/// as few requests as the protocol (125 registers, 2000 bits), `max_gap` and
/// `max_registers_per_read` allow. Computed once per configuration.
public struct ReadPlan: Sendable, Equatable {
    public struct Request: Sendable, Equatable, CustomStringConvertible {
        public var area: TagConfig.Area
        public var address: Int
        public var count: Int
        /// Indexes into the device's tags, in address order.
        public var tags: [Int]

        public var description: String { "\(area.rawValue) \(address)+\(count)" }
    }

    public var requests: [Request]

    public init(requests: [Request]) { self.requests = requests }

    public init(tags: [TagConfig], maxGap: Int, maxRegistersPerRead: Int) {
        var requests: [Request] = []
        for area in TagConfig.Area.allCases {
            let limit = Self.limit(area, maxRegistersPerRead: maxRegistersPerRead)
            let indexes = tags.indices.filter { tags[$0].area == area }.sorted { tags[$0].address < tags[$1].address }
            var current: Request?
            for i in indexes {
                let start = tags[i].address, end = start + Self.span(tags[i])
                if var open = current, start - (open.address + open.count) <= maxGap,
                    max(end, open.address + open.count) - open.address <= limit
                {
                    open.count = max(end, open.address + open.count) - open.address
                    open.tags.append(i)
                    current = open
                } else {
                    if let open = current { requests.append(open) }
                    current = Request(area: area, address: start, count: end - start, tags: [i])
                }
            }
            if let open = current { requests.append(open) }
        }
        self.requests = requests
    }

    /// The largest request the protocol and the configuration allow in `area`.
    public static func limit(_ area: TagConfig.Area, maxRegistersPerRead: Int) -> Int {
        area == .coil || area == .discrete ? 2000 : min(125, maxRegistersPerRead)
    }

    /// Registers (or bits) a tag occupies.
    public static func span(_ tag: TagConfig) -> Int {
        switch tag.area {
        case .coil, .discrete: 1
        case .holding, .input: tag.type == .string ? (tag.length ?? 1) : tag.type.registers
        }
    }

    /// The same plan with `request` replaced by one request per tag: after an exception, the
    /// tags that answer keep being read and only the bad ones fail.
    public func isolating(_ request: Request, tags: [TagConfig]) -> ReadPlan {
        var copy = self
        guard let at = requests.firstIndex(of: request) else { return copy }
        copy.requests.replaceSubrange(
            at...at,
            with: request.tags.map { i in
                Request(area: request.area, address: tags[i].address, count: Self.span(tags[i]), tags: [i])
            })
        return copy
    }
}
