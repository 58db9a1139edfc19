package io.tidemark.repository;

import io.tidemark.core.PermanentException;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.Json;
import io.tidemark.format.ObjectKeys;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.TreeSet;

/**
 * Drill results kept on a target as mutable state ({@code state/drills/<vm>/<drill-id>.json}, see
 * {@link ObjectKeys}). The port only offers put-if-absent, so every drill writes a key of its own
 * (ids sort by time) instead of overwriting one; the newest {@value #KEEP} per VM are kept.
 */
public final class DrillLog {

    /** How many results per VM are kept. */
    public static final int KEEP = 20;

    private final ObjectTarget target;

    public DrillLog(ObjectTarget target) {
        this.target = target;
    }

    /** Stores {@code r}, then drops the oldest results of its VM beyond {@value #KEEP}. */
    public void record(DrillRecord r) {
        String id = String.format(Locale.ROOT, "%013d-%s", r.at().toEpochMilli(), r.restorePoint());
        try {
            target.putIfAbsent(ObjectKeys.drill(r.vm(), id), Json.mapper().writeValueAsBytes(r));
        } catch (IOException e) {
            throw new IllegalStateException("a drill record cannot be serialised", e);
        }
        List<String> keys = target.list(ObjectKeys.drillPrefix(r.vm()));
        for (int i = 0; i < keys.size() - KEEP; i++) {
            target.delete(keys.get(i));
        }
    }

    /** The newest drill result of {@code vm}. */
    public Optional<DrillRecord> latest(String vm) {
        List<String> keys = target.list(ObjectKeys.drillPrefix(vm));
        for (int i = keys.size() - 1; i >= 0; i--) {
            Optional<byte[]> bytes = target.get(keys.get(i));
            if (bytes.isPresent()) {
                return Optional.of(parse(keys.get(i), bytes.get()));
            }
        }
        return Optional.empty();
    }

    /** The newest drill result of every VM that has one, by VM name. */
    public List<DrillRecord> latestPerVm() {
        TreeSet<String> vms = new TreeSet<>();
        for (String key : target.list(ObjectKeys.DRILLS)) {
            String rest = key.substring(ObjectKeys.DRILLS.length());
            int slash = rest.indexOf('/');
            if (slash > 0) {
                vms.add(rest.substring(0, slash));
            }
        }
        List<DrillRecord> out = new ArrayList<>();
        vms.forEach(vm -> latest(vm).ifPresent(out::add));
        return out;
    }

    private DrillRecord parse(String key, byte[] bytes) {
        try {
            return Json.mapper().readValue(bytes, DrillRecord.class);
        } catch (IOException e) {
            throw new PermanentException(
                    "drill record " + key + " in " + target.describe() + " is unreadable: " + e.getMessage()
                            + "; delete it (it is state, not backup data)",
                    e);
        }
    }
}
