package io.tidemark.workers.qmp;

import io.tidemark.core.PermanentException;
import java.nio.file.Path;

/**
 * QEMU answered a QMP command with {@code {"error":{"class":..,"desc":..}}}. The command was refused
 * as a whole; for a {@code transaction} that means none of its actions took effect.
 */
public class QmpException extends PermanentException {
    private static final long serialVersionUID = 1L;

    private final String command;
    private final String errorClass;
    private final String description;

    public QmpException(Path socket, String command, String errorClass, String description) {
        super("QMP command '" + command + "' on " + socket + " failed: " + errorClass + ": " + description);
        this.command = command;
        this.errorClass = errorClass;
        this.description = description;
    }

    /** The command QEMU refused, for example {@code transaction}. */
    public String command() {
        return command;
    }

    /** QEMU's error class, for example {@code GenericError} or {@code DeviceNotFound}. */
    public String errorClass() {
        return errorClass;
    }

    /** QEMU's human-readable description. */
    public String description() {
        return description;
    }
}
