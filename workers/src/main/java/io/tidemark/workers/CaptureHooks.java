package io.tidemark.workers;

import io.tidemark.core.event.ConsistencyAchieved;
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
     * @return the consistency achieved: {@link ConsistencyAchieved#APPLICATION} if the guest
     *     flushed and froze, else {@link ConsistencyAchieved#CRASH}
     */
    default ConsistencyAchieved freeze(String vm) {
        return ConsistencyAchieved.CRASH;
    }

    default void thaw(String vm) {}

    default void onCaptured(String vm, Instant capturedAt) {}
}
