package io.tidemark.workers;

import java.time.Instant;

/**
 * Calls around the snapshot moment of one VM. {@link #freeze} and {@link #thaw} bracket the capture
 * transaction (the guest agent's fsfreeze is one implementation; the demo's in-process "guest" is
 * another); {@link #thaw} runs on every path once {@link #freeze} returned. {@link #onCaptured}
 * runs after the point in time is fixed and before the export is read.
 */
public interface CaptureHooks {

    CaptureHooks NONE = new CaptureHooks() {};

    /**
     * Quiesces the guest before the capture.
     *
     * @return the consistency achieved: {@code application} if the guest flushed and froze, else
     *     {@code crash}
     */
    default String freeze(String vm) {
        return "crash";
    }

    default void thaw(String vm) {}

    default void onCaptured(String vm, Instant capturedAt) {}
}
