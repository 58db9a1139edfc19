package io.tidemark.app;

import io.tidemark.core.TidemarkException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.repository.DrillLog;
import io.tidemark.repository.DrillRecord;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** The newest drill result of every VM at every location (the local repository and each target). */
final class DrillResults {

    private static final Logger log = LoggerFactory.getLogger(DrillResults.class);

    private DrillResults() {}

    static List<DrillRecord> read(ObjectTarget primary, Map<String, ObjectTarget> targets) {
        List<DrillRecord> out = new ArrayList<>(new DrillLog(primary).latestPerVm());
        targets.values().forEach(t -> out.addAll(new DrillLog(t).latestPerVm()));
        return out;
    }

    /**
     * {@link #read} at most once per {@code ttl} (a scrape must not list every target each time);
     * when a location cannot be read, the last answer stands and the fault is logged.
     */
    static Supplier<List<DrillRecord>> cached(
            ObjectTarget primary, Map<String, ObjectTarget> targets, Clock clock, Duration ttl) {
        return new Supplier<>() {
            private List<DrillRecord> last = List.of();
            private Instant readAt = Instant.MIN;

            @Override
            public synchronized List<DrillRecord> get() {
                Instant now = clock.instant();
                if (readAt.equals(Instant.MIN) || Duration.between(readAt, now).compareTo(ttl) >= 0) {
                    readAt = now;
                    try {
                        last = read(primary, targets);
                    } catch (TidemarkException e) {
                        log.warn("drill results not refreshed: {}", e.getMessage());
                    }
                }
                return last;
            }
        };
    }
}
