import FastCGI
import NIOCore
import Testing

/// A small deterministic generator so property tests are reproducible from their seed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One raw record, written by hand (independently of the encoders) as the spec lays it out.
func record(_ type: UInt8, _ id: UInt16, _ content: [UInt8] = [], padding: Int = 0, paddingByte: UInt8 = 0) -> [UInt8] {
    var bytes: [UInt8] = [
        1, type, UInt8(id >> 8), UInt8(id & 0xff), UInt8(content.count >> 8), UInt8(content.count & 0xff),
        UInt8(padding), 0,
    ]
    bytes += content
    bytes += [UInt8](repeating: paddingByte, count: padding)
    return bytes
}

func beginBody(role: UInt16 = 1, keep: Bool = false) -> [UInt8] {
    [UInt8(role >> 8), UInt8(role & 0xff), keep ? 1 : 0, 0, 0, 0, 0, 0]
}

func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func array(_ buffer: ByteBuffer) -> [UInt8] { Array(buffer.readableBytesView) }

/// Merges adjacent body chunks of the same request, so events from different splits compare equal.
func normalize(_ events: [RequestEvent]) -> [RequestEvent] {
    var result: [RequestEvent] = []
    for event in events {
        switch (result.last, event) {
        case (.stdin(let a, var x)?, .stdin(let b, var y)) where a == b:
            x.writeBuffer(&y)
            result[result.count - 1] = .stdin(requestID: a, x)
        case (.data(let a, var x)?, .data(let b, var y)) where a == b:
            x.writeBuffer(&y)
            result[result.count - 1] = .data(requestID: a, x)
        default:
            result.append(event)
        }
    }
    return result
}

func normalize(_ events: [ResponseEvent]) -> [ResponseEvent] {
    var result: [ResponseEvent] = []
    for event in events {
        switch (result.last, event) {
        case (.stdout(let a, var x)?, .stdout(let b, var y)) where a == b:
            x.writeBuffer(&y)
            result[result.count - 1] = .stdout(requestID: a, x)
        case (.stderr(let a, var x)?, .stderr(let b, var y)) where a == b:
            x.writeBuffer(&y)
            result[result.count - 1] = .stderr(requestID: a, x)
        default:
            result.append(event)
        }
    }
    return result
}

/// Feeds `input` in pieces (each a fresh buffer, dropped after the decoder returns nil) and
/// collects every event. `endOnParams` mimics a server that ends requests after their params.
func decode(
    _ input: [UInt8],
    cuts: [Int] = [],
    limits: DecoderLimits = .init(),
    decoder: inout RequestDecoder
) throws(FastCGIError) -> [RequestEvent] {
    var events: [RequestEvent] = []
    var start = 0
    for end in cuts.sorted() + [input.count] where end >= start {
        var piece = ByteBuffer(bytes: input[start..<end])
        while let event = try decoder.next(from: &piece) {
            events.append(event)
        }
        precondition(piece.readableBytes == 0, "decoder returned nil with bytes left")
        start = end
    }
    return events
}

func decode(_ input: [UInt8], cuts: [Int] = [], limits: DecoderLimits = .init()) throws(FastCGIError) -> [RequestEvent]
{
    var decoder = RequestDecoder(limits: limits)
    return try decode(input, cuts: cuts, limits: limits, decoder: &decoder)
}

/// Feeds `input` one byte at a time.
func decodeBytewise(_ input: [UInt8], limits: DecoderLimits = .init()) throws(FastCGIError) -> [RequestEvent] {
    var decoder = RequestDecoder(limits: limits)
    var events: [RequestEvent] = []
    for byte in input {
        var piece = ByteBuffer(bytes: [byte])
        while let event = try decoder.next(from: &piece) {
            events.append(event)
        }
    }
    return events
}

func decodeResponse(_ input: [UInt8], cuts: [Int] = []) throws(FastCGIError) -> [ResponseEvent] {
    var decoder = ResponseDecoder()
    var events: [ResponseEvent] = []
    var start = 0
    for end in cuts.sorted() + [input.count] where end >= start {
        var piece = ByteBuffer(bytes: input[start..<end])
        while let event = try decoder.next(from: &piece) {
            events.append(event)
        }
        precondition(piece.readableBytes == 0, "decoder returned nil with bytes left")
        start = end
    }
    return events
}

/// Runs `body` and returns the FastCGIError it throws, or nil.
func fastCGIError(_ body: () throws -> Void) -> FastCGIError? {
    do {
        try body()
        return nil
    } catch let error as FastCGIError {
        return error
    } catch {
        Issue.record("unexpected error type: \(error)")
        return nil
    }
}

func stdin(_ id: UInt16, _ text: String) -> RequestEvent { .stdin(requestID: id, buffer(bytes(text))) }
