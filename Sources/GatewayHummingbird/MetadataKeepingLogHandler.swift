#if Hummingbird
import Logging

/// A log handler that keeps the metadata set on it, in front of one that may not
/// (`SwiftLogNoOpLogHandler` drops it), and hands it on with every message.
///
/// Hummingbird's `RequestContext.id` force-unwraps the logger's `hb.request.id`: with a
/// handler that drops metadata, reading the id would trap the process.
struct MetadataKeepingLogHandler: LogHandler {
    var wrapped: any LogHandler
    var metadata: Logger.Metadata = [:]

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        event.metadata = event.metadata.map { metadata.merging($0) { _, given in given } } ?? metadata
        wrapped.log(event: event)
    }
}

extension Logger {
    /// This logger with `value` at `key`, kept even when its handler drops metadata.
    func keeping(_ value: Logger.Metadata.Value, at key: String) -> Logger {
        var logger = self
        logger[metadataKey: key] = value
        if logger[metadataKey: key] != nil { return logger }
        var kept = Logger(label: label, factory: { _ in MetadataKeepingLogHandler(wrapped: self.handler) })
        kept[metadataKey: key] = value
        return kept
    }
}
#endif
