package io.tidemark.cli;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.JsonEncoder;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import org.slf4j.LoggerFactory;

/**
 * {@code run --json}: the engine's log as JSON lines on stderr (one object per event, with {@code
 * timestamp}, {@code level}, {@code loggerName}, {@code message}, ...), for a log shipper. A long-running
 * command has no result document; stdout stays empty.
 */
final class JsonLogs {

    private JsonLogs() {}

    /** Replaces the root logger's appenders by one writing JSON lines to stderr; false when not logback. */
    static boolean useJsonLines() {
        if (!(LoggerFactory.getILoggerFactory() instanceof LoggerContext context)) {
            return false;
        }
        JsonEncoder encoder = new JsonEncoder();
        encoder.setContext(context);
        encoder.start();
        ConsoleAppender<ILoggingEvent> appender = new ConsoleAppender<>();
        appender.setContext(context);
        appender.setName("JSON");
        appender.setTarget("System.err");
        appender.setEncoder(encoder);
        appender.start();
        Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
        root.detachAndStopAllAppenders();
        root.addAppender(appender);
        return true;
    }
}
