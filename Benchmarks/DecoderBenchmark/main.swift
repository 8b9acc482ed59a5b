// Measures the FastCGI request decoder on one core, each figure next to a baseline measured in
// the same run on the same bytes:
//  (a) STDIN framing: bodies of 4 requests whose STDIN records interleave, records of 1 KiB,
//      8 KiB, 64 KiB and a mix of sizes, arriving in 64 KiB reads, in GB/s of the byte stream.
//      Baselines: a header walk (read each 8-byte record header, skip content and padding: the
//      least any FastCGI framer must do) and memcpy of the same bytes (a framer that copies).
//  (b) a typical nginx request (BEGIN_REQUEST, the params nginx's fastcgi_params sends, empty
//      PARAMS, empty STDIN), one read per request on one kept connection, decoded into its
//      environ (NameValuePairs), in requests per second. Baseline: a naive decoder of the same
//      bytes into a `[String: String]`, the way a first implementation would.
// Every figure is the median of the repeats, in this thread's CPU time.
//
// Usage: DecoderBenchmark [repeats] [a|b|ab]

import FastCGI
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// This thread's CPU time: the figure for "one core", not inflated when other processes share
/// the machine (wall time is).
func threadCPUTime() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
}

/// Runs `body` and returns the CPU seconds it took and its result.
func timed<Result>(_ body: () -> Result) -> (Double, Result) {
    let start = threadCPUTime()
    let result = body()
    return (threadCPUTime() - start, result)
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1
        ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func format(_ value: Double, _ decimals: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    return "\(rounded)"
}

func padded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}

func leftPadded(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

let arguments = CommandLine.arguments
let repeats = max(1, arguments.count > 1 ? Int(arguments[1]) ?? 7 : 7)
let only = arguments.count > 2 ? arguments[2] : "ab"

// MARK: (a) interleaved STDIN records

/// A deterministic generator (SplitMix64), so every run frames the same stream.
struct SplitMix64 {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One stream to frame: the reads a server would receive, and what they hold.
struct StdinStream {
    var name: String
    var reads: [ByteBuffer]
    var streamBytes: Int
    var bodyBytes: Int
    var stdinRecords: Int
}

/// `requests` requests begun, their STDIN records of `nextSize()` bytes interleaved round-robin
/// until `bodyTarget` body bytes, padded to 8 bytes as nginx pads them, then every STDIN ended;
/// cut into `readSize` reads (records straddle them, as on a socket).
func makeStdinStream(
    name: String,
    requests: UInt16 = 4,
    bodyTarget: Int,
    readSize: Int = 64 << 10,
    nextSize: () -> Int
) -> StdinStream {
    var stream = ByteBuffer()
    stream.reserveCapacity(bodyTarget + bodyTarget / 64 + 4096)
    for id in 1...requests {
        RequestEncoder.writeBeginRequest(requestID: id, keepConnection: true, into: &stream)
        RequestEncoder.writeParams(
            [("REQUEST_METHOD", "POST"), ("CONTENT_TYPE", "application/octet-stream")],
            requestID: id,
            into: &stream
        )
    }
    let content = [UInt8](repeating: 0x78, count: RecordHeader.maxContentLength)
    var body = 0
    var records = 0
    var id: UInt16 = 1
    while body < bodyTarget {
        let size = nextSize()
        RequestEncoder.writeRecord(
            type: RecordType.stdin.rawValue,
            requestID: id,
            content: content[0..<size],
            paddingLength: UInt8((8 - size % 8) % 8),
            into: &stream
        )
        body += size
        records += 1
        id = id % requests + 1
    }
    for id in 1...requests { RequestEncoder.writeStdinEnd(requestID: id, into: &stream) }
    let streamBytes = stream.readableBytes
    var reads: [ByteBuffer] = []
    while stream.readableBytes > 0 {
        var piece = ByteBufferAllocator().buffer(capacity: readSize)
        var slice = stream.readSlice(length: min(readSize, stream.readableBytes))!
        piece.writeBuffer(&slice)
        reads.append(piece)
    }
    return StdinStream(name: name, reads: reads, streamBytes: streamBytes, bodyBytes: body, stdinRecords: records)
}

/// The decoder, as the server drives it: every read fed in turn, events pulled until it needs
/// more; a new decoder (connection) per pass. Returns the STDIN body bytes it handed out.
func decodeStdin(_ stream: StdinStream, passes: Int) -> Int {
    var received = 0
    do {
        for _ in 0..<passes {
            var decoder = RequestDecoder()
            for read in stream.reads {
                var input = read  // shares storage; only indices move
                while let event = try decoder.next(from: &input) {
                    if case .stdin(_, let slice) = event { received &+= slice.readableBytes }
                }
            }
        }
    } catch {
        fatalError("benchmark stream rejected: \(error)")
    }
    return received
}

/// The floor of any FastCGI framer: read each 8-byte header (also when a read splits it), add up
/// STDIN content lengths, skip content and padding. No request table, no limits, no events.
func walkHeaders(_ stream: StdinStream, passes: Int) -> Int {
    var header: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0, 0, 0, 0, 0)
    var have = 0
    var skip = 0
    var stdinBytes = 0
    for _ in 0..<passes {
        for read in stream.reads {
            read.withUnsafeReadableBytes { bytes in
                var index = 0
                let count = bytes.count
                while index < count {
                    if skip > 0 {
                        let step = min(skip, count - index)
                        index += step
                        skip -= step
                        continue
                    }
                    let type: UInt8
                    let contentLength: Int
                    let paddingLength: Int
                    if have == 0, count - index >= 8 {
                        type = bytes[index + 1]
                        contentLength = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
                        paddingLength = Int(bytes[index + 6])
                        index += 8
                    } else {
                        withUnsafeMutableBytes(of: &header) { $0[have] = bytes[index] }
                        have += 1
                        index += 1
                        guard have == 8 else { continue }
                        have = 0
                        type = header.1
                        contentLength = Int(header.4) << 8 | Int(header.5)
                        paddingLength = Int(header.6)
                    }
                    if type == RecordType.stdin.rawValue { stdinBytes &+= contentLength }
                    skip = contentLength + paddingLength
                }
            }
        }
    }
    return stdinBytes
}

/// memcpy of every read into one destination: what a framer that copies the stream costs at least.
func copyAll(_ stream: StdinStream, passes: Int, into destination: UnsafeMutableRawPointer) -> Int {
    var copied = 0
    for _ in 0..<passes {
        var offset = 0
        for read in stream.reads {
            read.withUnsafeReadableBytes { source in
                _ = memcpy(destination + offset, source.baseAddress!, source.count)
                offset += source.count
            }
        }
        copied += offset
    }
    return copied
}

func benchmarkStdin() {
    // 2 MiB of body per stream, framed 16 times per measurement: the reads stay in the caches,
    // as bytes the kernel has just copied into a server's receive buffer are.
    let bodyTarget = 2 << 20
    let passes = 16
    var random = SplitMix64(state: 14)
    let mixSizes = [100, 512, 1024, 4096, 8192, 16384, 32768, 65535]
    let streams = [
        makeStdinStream(name: "1 KiB records", bodyTarget: bodyTarget) { 1024 },
        makeStdinStream(name: "8 KiB records", bodyTarget: bodyTarget) { 8192 },
        makeStdinStream(name: "64 KiB records", bodyTarget: bodyTarget) { 65535 },
        makeStdinStream(name: "mixed records", bodyTarget: bodyTarget) {
            mixSizes[Int(random.next() % UInt64(mixSizes.count))]
        },
    ]
    let largest = streams.map(\.streamBytes).max()!
    let destination = UnsafeMutableRawPointer.allocate(byteCount: largest, alignment: 64)
    defer { destination.deallocate() }
    memset(destination, 0, largest)  // fault its pages in before anything is timed

    print(
        "(a) STDIN framing: 4 requests' STDIN records interleaved, \(bodyTarget >> 20) MiB of body per stream in 64 KiB reads, \(passes) passes;"
    )
    print("    GB/s of the stream (10^9 B per CPU second), median of \(repeats); ns per STDIN record in brackets")
    print(
        "    \(padded("records", 16)) \(leftPadded("decoder", 20)) \(leftPadded("header walk", 20)) \(leftPadded("memcpy", 20))  decoder's time ÷ walk's"
    )
    for stream in streams {
        var decoderTimes: [Double] = []
        var walkTimes: [Double] = []
        var copyTimes: [Double] = []
        for _ in 0..<repeats {
            // Interleaved, so drifts in machine load touch all three alike.
            let (decodeTime, decoded) = timed { decodeStdin(stream, passes: passes) }
            let (walkTime, walked) = timed { walkHeaders(stream, passes: passes) }
            let (copyTime, copied) = timed { copyAll(stream, passes: passes, into: destination) }
            let body = stream.bodyBytes * passes
            precondition(decoded == body, "decoder handed out \(decoded) of \(body) bytes")
            precondition(walked == body, "header walk counted \(walked) of \(body) bytes")
            precondition(copied == stream.streamBytes * passes)
            decoderTimes.append(decodeTime)
            walkTimes.append(walkTime)
            copyTimes.append(copyTime)
        }
        func cell(_ times: [Double]) -> String {
            let seconds = median(times)
            let rate = Double(stream.streamBytes * passes) / seconds / 1e9
            return "\(format(rate)) (\(format(seconds * 1e9 / Double(stream.stdinRecords * passes), 1)) ns)"
        }
        let ratio = median(decoderTimes) / median(walkTimes)
        print(
            "    \(padded(stream.name, 16)) \(leftPadded(cell(decoderTimes), 20)) \(leftPadded(cell(walkTimes), 20)) \(leftPadded(cell(copyTimes), 20))  \(format(ratio, 1))×"
        )
    }
    print("    (mixed: 100 B to 64 KiB, 8 sizes drawn evenly; the decoder hands body bytes on as slices,")
    print("     so neither it nor the walk touches them; memcpy reads and writes every byte)")
}

// MARK: (b) typical nginx requests

/// The params nginx sends with the stock fastcgi_params (plus SCRIPT_FILENAME/PATH_INFO and a
/// browser's usual headers), in nginx's order.
let nginxParams: [(String, String)] = [
    ("QUERY_STRING", "page=2&sort=desc"),
    ("REQUEST_METHOD", "GET"),
    ("CONTENT_TYPE", ""),
    ("CONTENT_LENGTH", ""),
    ("SCRIPT_NAME", "/app/index"),
    ("REQUEST_URI", "/app/index?page=2&sort=desc"),
    ("DOCUMENT_URI", "/app/index"),
    ("DOCUMENT_ROOT", "/var/www/html"),
    ("SERVER_PROTOCOL", "HTTP/1.1"),
    ("REQUEST_SCHEME", "https"),
    ("HTTPS", "on"),
    ("GATEWAY_INTERFACE", "CGI/1.1"),
    ("SERVER_SOFTWARE", "nginx/1.26.3"),
    ("REMOTE_ADDR", "203.0.113.54"),
    ("REMOTE_PORT", "51234"),
    ("SERVER_ADDR", "192.0.2.10"),
    ("SERVER_PORT", "443"),
    ("SERVER_NAME", "www.example.com"),
    ("REDIRECT_STATUS", "200"),
    ("SCRIPT_FILENAME", "/var/www/html/app/index"),
    ("PATH_INFO", ""),
    ("HTTP_HOST", "www.example.com"),
    (
        "HTTP_USER_AGENT",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    ),
    ("HTTP_ACCEPT", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("HTTP_ACCEPT_LANGUAGE", "en-US,en;q=0.5"),
    ("HTTP_ACCEPT_ENCODING", "gzip, deflate, br, zstd"),
    ("HTTP_REFERER", "https://www.example.com/app/index?page=1&sort=desc"),
    ("HTTP_COOKIE", "session=7f3c2a9e5b1d4c6f8a0e2b4d6f8a0c2e; theme=dark; lang=en"),
    ("HTTP_CONNECTION", "keep-alive"),
    ("HTTP_UPGRADE_INSECURE_REQUESTS", "1"),
    ("HTTP_SEC_FETCH_DEST", "document"),
    ("HTTP_SEC_FETCH_MODE", "navigate"),
]

/// The obvious decoder of one request that arrived whole: walk its records, gather PARAMS
/// content, and at the empty PARAMS record parse the pairs into a dictionary of Strings. It
/// does less than `RequestDecoder` (no split records, no multiplexing, no limits) but builds
/// the environ most code would build.
func naiveEnviron(_ bytes: UnsafeRawBufferPointer) -> [String: String] {
    var params: [UInt8] = []
    var environ: [String: String] = [:]
    var index = 0
    while index + 8 <= bytes.count {
        let type = bytes[index + 1]
        let length = Int(bytes[index + 4]) << 8 | Int(bytes[index + 5])
        let padding = Int(bytes[index + 6])
        if type == RecordType.params.rawValue {
            if length > 0 {
                params.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index + 8..<index + 8 + length]))
            } else {
                params.withUnsafeBufferPointer { pairs in
                    var at = 0
                    while at < pairs.count {
                        var lengths = (0, 0)
                        for which in 0..<2 {
                            let value: Int
                            if pairs[at] < 0x80 {
                                value = Int(pairs[at])
                                at += 1
                            } else {
                                value =
                                    Int(pairs[at] & 0x7F) << 24 | Int(pairs[at + 1]) << 16 | Int(pairs[at + 2]) << 8
                                    | Int(pairs[at + 3])
                                at += 4
                            }
                            if which == 0 { lengths.0 = value } else { lengths.1 = value }
                        }
                        let name = String(
                            decoding: UnsafeBufferPointer(rebasing: pairs[at..<at + lengths.0]),
                            as: UTF8.self
                        )
                        at += lengths.0
                        environ[name] = String(
                            decoding: UnsafeBufferPointer(rebasing: pairs[at..<at + lengths.1]),
                            as: UTF8.self
                        )
                        at += lengths.1
                    }
                }
            }
        }
        index += 8 + length + padding
    }
    return environ
}

func benchmarkRequests() {
    var oneRequest = ByteBuffer()
    RequestEncoder.writeBeginRequest(requestID: 1, keepConnection: true, into: &oneRequest)
    RequestEncoder.writeParams(nginxParams, requestID: 1, into: &oneRequest)
    RequestEncoder.writeStdinEnd(requestID: 1, into: &oneRequest)
    let requestSize = oneRequest.readableBytes
    let requestCount = arguments.count > 3 ? max(1, Int(arguments[3]) ?? 100_000) : 100_000

    /// One kept connection: one decoder, each request arriving in its own read.
    func runDecoder() -> Int {
        var decoder = RequestDecoder()
        var checksum = 0
        do {
            for _ in 0..<requestCount {
                var input = oneRequest  // shares storage; only indices move
                while let event = try decoder.next(from: &input) {
                    switch event {
                    case .params(_, let pairs):
                        checksum &+= pairs.count &+ pairs.storage.count
                    case .stdinEnd(let id):
                        decoder.endRequest(id)  // as the server does once the response is written
                    default:
                        break
                    }
                }
            }
        } catch {
            fatalError("benchmark stream rejected: \(error)")
        }
        return checksum
    }

    func runNaive() -> Int {
        var checksum = 0
        oneRequest.withUnsafeReadableBytes { bytes in
            for _ in 0..<requestCount {
                let environ = naiveEnviron(bytes)
                checksum &+= environ.count &+ (environ["QUERY_STRING"]?.utf8.count ?? 0)
            }
        }
        return checksum
    }

    var decoderTimes: [Double] = []
    var naiveTimes: [Double] = []
    for _ in 0..<repeats {
        let (decoderTime, decoderSum) = timed { runDecoder() }
        let (naiveTime, naiveSum) = timed { runNaive() }
        precondition(decoderSum > 0 && naiveSum > 0)
        decoderTimes.append(decoderTime)
        naiveTimes.append(naiveTime)
    }
    func cell(_ times: [Double]) -> String {
        let seconds = median(times)
        return
            "\(format(Double(requestCount) / seconds / 1e6, 3)) M req/s (\(format(seconds * 1e9 / Double(requestCount), 0)) ns)"
    }
    print(
        "(b) nginx request (\(nginxParams.count) params, \(requestSize) bytes, one read each), \(requestCount) per run, median of \(repeats):"
    )
    print("    RequestDecoder → NameValuePairs (its environ):    \(cell(decoderTimes))")
    print("    naive decoder  → [String: String]:                \(cell(naiveTimes))")
    print("    ratio: \(format(median(naiveTimes) / median(decoderTimes)))× the naive decoder's requests/s")
}

if only.contains("a") {
    benchmarkStdin()
}
if only.contains("b") {
    benchmarkRequests()
}
