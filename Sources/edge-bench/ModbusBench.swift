import CModbus
import EdgeAgent
import EdgeAgentCore
import EdgeAgentTools
import Foundation

/// `modbus.requests` and `modbus.poll`: 1,000 tags over 10 devices, with gaps and mixed types,
/// on loopback libmodbus servers.
enum ModbusBench {
    static let devices = 10
    static let tagsPerDevice = 100
    static let cycles = 300

    /// A deterministic address map: mixed types, gaps of 0 to 12 registers, some coils.
    static func tags(seed: Int) -> [TagConfig] {
        var state = UInt64(seed + 1) &* 0x9E37_79B9_7F4A_7C15
        func next(_ n: Int) -> Int {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((state >> 33) % UInt64(n))
        }
        let types: [TagConfig.ValueType] = [
            .uint16, .int16, .uint32, .int32, .float32, .float64, .uint64, .string, .bool,
        ]
        var address = [TagConfig.Area.holding: 0, .input: 0, .coil: 0]
        return (0..<tagsPerDevice).map { i in
            let area: TagConfig.Area = [.holding, .holding, .holding, .input, .coil][next(5)]
            let type = area == .coil ? .bool : types[next(types.count)]
            var tag = TagConfig(name: "t\(i)", area: area, address: address[area]!, type: type)
            if type == .string { tag.length = 4 }
            if type == .bool, area != .coil { tag.bit = next(16) }
            address[area]! += ReadPlan.span(tag) + (next(3) == 0 ? next(13) : 0)
            return tag
        }
    }

    /// The fewest requests that can cover `tags` under the same limits, by dynamic programming
    /// over each area's sorted tags (independent of the planner's greedy sweep).
    static func minimumRequests(_ tags: [TagConfig], maxGap: Int, maxRegistersPerRead: Int) -> Int {
        TagConfig.Area.allCases.reduce(0) { total, area in
            let sorted = tags.filter { $0.area == area }.sorted { $0.address < $1.address }
            guard !sorted.isEmpty else { return total }
            let limit = ReadPlan.limit(area, maxRegistersPerRead: maxRegistersPerRead)
            var best = [Int](repeating: Int.max, count: sorted.count + 1)
            best[0] = 0
            for end in 1...sorted.count {
                var reach = 0
                for start in stride(from: end - 1, through: 0, by: -1) {
                    if start < end - 1,
                        sorted[start + 1].address - (sorted[start].address + ReadPlan.span(sorted[start])) > maxGap
                    {
                        break
                    }
                    reach = max(reach, sorted[start].address + ReadPlan.span(sorted[start]))
                    let ends = max(reach, sorted[end - 1].address + ReadPlan.span(sorted[end - 1]))
                    guard ends - sorted[start].address <= limit else { break }
                    if best[start] != Int.max { best[end] = min(best[end], best[start] + 1) }
                }
            }
            return total + best[sorted.count]
        }
    }

    static func run() throws -> [BenchResult] {
        let servers = try (0..<devices).map { _ in try ModbusServer(host: "127.0.0.1", port: 0) }
        defer { for server in servers { server.stop() } }
        let configs = servers.enumerated().map { i, server -> DeviceConfig in
            var device = DeviceConfig(name: "plc\(i)", transport: .tcp(host: "127.0.0.1", port: server.port))
            device.tags = tags(seed: i)
            return device
        }
        let plans = configs.map {
            ReadPlan(tags: $0.tags, maxGap: $0.maxGap, maxRegistersPerRead: $0.maxRegistersPerRead)
        }
        let planned = plans.reduce(0) { $0 + $1.requests.count }
        let minimum = configs.reduce(0) {
            $0 + minimumRequests($1.tags, maxGap: $1.maxGap, maxRegistersPerRead: $1.maxRegistersPerRead)
        }

        let clients = try configs.map { try ModbusClient($0.transport, timeout: .seconds(1)) }
        for client in clients { try client.connect() }
        let raw = try configs.map { try RawLink($0) }
        var best = Double.infinity, bestRaw = Double.infinity
        for _ in 0..<3 {
            best = min(
                best,
                try seconds {
                    for _ in 0..<cycles {
                        for i in configs.indices {
                            let cycle = DevicePoller.poll(clients[i], plan: plans[i], device: configs[i])
                            if let error = cycle.linkError { throw error }
                        }
                    }
                })
            bestRaw = min(
                bestRaw,
                try seconds {
                    for _ in 0..<cycles {
                        for i in configs.indices { try raw[i].read(plans[i]) }
                    }
                })
        }
        let toMs = 1000.0 / Double(cycles)
        return [
            BenchResult(
                bench: "modbus.requests", value: Double(planned), unit: "requests/cycle",
                baseline: "the fewest requests that cover the same 1,000-tag map (dynamic programming)",
                baselineValue: Double(minimum)),
            BenchResult(
                bench: "modbus.poll", value: best * toMs, unit: "ms/cycle",
                baseline: "raw libmodbus reads of the same blocks, no decoding", baselineValue: bestRaw * toMs),
        ]
    }

    /// libmodbus with nothing around it: the blocks of a plan read into a reused buffer.
    final class RawLink {
        let context: OpaquePointer
        var registers = [UInt16](repeating: 0, count: 125)
        var bits = [UInt8](repeating: 0, count: 2000)

        init(_ device: DeviceConfig) throws {
            guard case let .tcp(host, port) = device.transport, let context = modbus_new_tcp(host, Int32(port)),
                modbus_connect(context) == 0
            else { throw BenchError("raw connect failed") }
            self.context = context
        }

        deinit {
            modbus_close(context)
            modbus_free(context)
        }

        func read(_ plan: ReadPlan) throws {
            for request in plan.requests {
                let n: Int32 =
                    switch request.area {
                    case .holding:
                        modbus_read_registers(context, Int32(request.address), Int32(request.count), &registers)
                    case .input:
                        modbus_read_input_registers(context, Int32(request.address), Int32(request.count), &registers)
                    case .coil: modbus_read_bits(context, Int32(request.address), Int32(request.count), &bits)
                    case .discrete: modbus_read_input_bits(context, Int32(request.address), Int32(request.count), &bits)
                    }
                guard n == request.count else { throw BenchError("raw read failed") }
            }
        }
    }
}
