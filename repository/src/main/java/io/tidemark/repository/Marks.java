package io.tidemark.repository;

import io.tidemark.core.repository.PointMark;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.format.ObjectKeys;
import io.tidemark.format.PointMarkCodec;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;

/**
 * The marks on restore points ({@code marks/<vm>/<id>[.<version>]}): the only repository objects
 * that are replaced. A new mark is written as the next version before the older versions are
 * removed, so a crash in between leaves both and readers take the newest. Marks are plain JSON in
 * an encrypted repository too (they hold no data). Thread-safe: it keeps no state.
 */
final class Marks {

    private final ObjectTarget target;

    Marks(ObjectTarget target) {
        this.target = target;
    }

    /** See {@link Repository#mark}. */
    void mark(String vm, String id, PointMark mark) {
        byte[] bytes = PointMarkCodec.encode(mark);
        List<ObjectKeys.MarkKey> older = versions(vm).getOrDefault(id, List.of());
        long version = older.isEmpty() ? 1 : older.get(older.size() - 1).version() + 1;
        while (!target.putIfAbsent(ObjectKeys.mark(vm, id, version), bytes)) {
            version++; // another writer took this version meanwhile: ours comes after it
        }
        for (ObjectKeys.MarkKey k : older) {
            target.delete(k.version() == 0 ? ObjectKeys.mark(vm, id) : ObjectKeys.mark(vm, id, k.version()));
        }
    }

    /** See {@link Repository#marks}. */
    Map<String, PointMark> marks(String vm) {
        Map<String, PointMark> out = new TreeMap<>();
        versions(vm).forEach((id, versions) -> {
            for (int i = versions.size() - 1; i >= 0; i--) {
                long v = versions.get(i).version();
                String key = v == 0 ? ObjectKeys.mark(vm, id) : ObjectKeys.mark(vm, id, v);
                Optional<byte[]> bytes = target.get(key);
                if (bytes.isPresent()) { // absent: replaced since the listing, take the next one
                    out.put(id, PointMarkCodec.decode(key, bytes.get()));
                    return;
                }
            }
        });
        return out;
    }

    /** The mark keys of {@code vm} by restore point id, each list oldest version first. */
    private Map<String, List<ObjectKeys.MarkKey>> versions(String vm) {
        Map<String, List<ObjectKeys.MarkKey>> out = new TreeMap<>();
        for (String key : target.list(ObjectKeys.markPrefix(vm))) {
            ObjectKeys.parseMark(vm, key).ifPresent(k -> out.computeIfAbsent(k.restorePointId(), x -> new ArrayList<>())
                    .add(k));
        }
        out.values().forEach(l -> l.sort(Comparator.comparingLong(ObjectKeys.MarkKey::version)));
        return out;
    }
}
