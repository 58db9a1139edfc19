package io.tidemark.demo.bench;

import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * What a soak VM's disks held over time, kept by the soak itself (never by the engine): one state
 * per acknowledged write, with the instant the write was issued and the instant it was
 * acknowledged, and the SHA-256 of every disk after it. A restore point is accepted only if its
 * restored checksums equal a state that may have been on the disks at its capture moment.
 *
 * <p>State {@code k} may be on disk from the moment write {@code k} was issued until write {@code
 * k+1} was acknowledged. The capture moment lies in {@code [capturedAt - slack, capturedAt]}: the
 * engine takes {@code capturedAt} right after the QMP transaction returns, and slack covers that
 * round trip. Thread-safe.
 */
final class SoakModel {

    /** One disk state. {@code issued} and {@code acked} are null for the initial all-zero state. */
    record State(int seq, Instant issued, Instant acked, Map<String, String> sha256) {}

    /** The verdict on one restored point. */
    record Verdict(boolean accepted, String detail) {}

    private final List<State> states = new ArrayList<>();

    SoakModel(Map<String, String> initial) {
        states.add(new State(0, null, null, Map.copyOf(initial)));
    }

    synchronized void add(Instant issued, Instant acked, Map<String, String> sha256) {
        states.add(new State(states.size(), issued, acked, Map.copyOf(sha256)));
    }

    synchronized State latest() {
        return states.get(states.size() - 1);
    }

    synchronized int size() {
        return states.size();
    }

    /**
     * Whether {@code restored} (disk → SHA-256) equals a state that may have been on the disks at
     * {@code capturedAt}; the detail names the match or why there is none.
     */
    synchronized Verdict judge(Instant capturedAt, Duration slack, Map<String, String> restored) {
        Instant from = capturedAt.minus(slack);
        List<Integer> equalElsewhere = new ArrayList<>();
        for (int k = 0; k < states.size(); k++) {
            State s = states.get(k);
            if (!s.sha256().equals(restored)) {
                continue;
            }
            Instant start = s.issued() == null ? Instant.MIN : s.issued();
            Instant end = k + 1 < states.size() ? states.get(k + 1).acked() : Instant.MAX;
            // the state's possible interval [start, end] meets the capture window [from, capturedAt]
            if (!start.isAfter(capturedAt) && !end.isBefore(from)) {
                return new Verdict(true, "state " + k);
            }
            equalElsewhere.add(k);
        }
        if (!equalElsewhere.isEmpty()) {
            State s = states.get(equalElsewhere.get(0));
            return new Verdict(
                    false,
                    "equals state " + equalElsewhere + " (written " + s.issued() + "), not a state on the disk at "
                            + capturedAt);
        }
        return new Verdict(false, "equals no state the disks ever held");
    }
}
