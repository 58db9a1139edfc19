package io.tidemark.recovery.layeringprobe;

import io.tidemark.engine.MetricsServer;
import io.tidemark.testkit.FakeClock;

/**
 * Test code only: a class that breaks two layering rules (recovery uses the engine, main code uses
 * the test kit), so {@code LayeringTest} can show its rules catch what they claim to.
 */
final class RecoveryThatReachesIntoTheEngine {

    private RecoveryThatReachesIntoTheEngine() {}

    static String names() {
        return MetricsServer.class.getName() + FakeClock.class.getName();
    }
}
