package io.tidemark.engine;

import io.tidemark.core.repository.Manifest;
import io.tidemark.core.target.ObjectTarget;
import io.tidemark.repository.Repository;
import io.tidemark.scheduler.RpoTracker;
import java.util.Map;

/** Teaches an {@link RpoTracker} the newest restore point of every VM at every location. */
final class RpoSources {

    private RpoSources() {}

    /** @param locations the primary repository as {@code local}, and each target's by name */
    static void seed(RpoTracker tracker, Map<String, Repository> locations) {
        locations.forEach((name, repo) -> seed(tracker, name, repo));
    }

    /** The primary as {@code local}, then the repositories the targets hold (empty targets left out). */
    static Map<String, Repository> locations(Repository primary, Map<String, ObjectTarget> targets) {
        Map<String, Repository> out = new java.util.LinkedHashMap<>();
        out.put(RpoTracker.LOCAL, primary);
        out.putAll(Targets.repositories(primary, targets));
        return out;
    }

    /**
     * Writes what {@code tracker} knows of the newest restore point of every VM at every location to
     * {@code file} (atomically), so that a restart can seed a location it cannot read then.
     */
    static void remember(RpoTracker tracker, java.nio.file.Path file) {
        Map<String, Map<String, String>> newest = new java.util.TreeMap<>();
        for (RpoTracker.Status s : tracker.status()) {
            s.newestCapturedAt().ifPresent(at -> newest.computeIfAbsent(s.location(), l -> new java.util.TreeMap<>())
                    .put(s.vm(), at.toString()));
        }
        try {
            java.nio.file.Files.createDirectories(file.getParent());
            java.nio.file.Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
            JSON.writeValue(tmp.toFile(), newest);
            java.nio.file.Files.move(
                    tmp,
                    file,
                    java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                    java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        } catch (java.io.IOException e) {
            throw new io.tidemark.core.RetriableException("cannot write " + file + ": " + e.getMessage(), e);
        }
    }

    /**
     * Seeds {@code tracker} for {@code locations} from what {@link #remember} wrote in an earlier life:
     * for a target that does not answer at start-up, the newest point it held then is still known,
     * so its RPO keeps being measured (and violated) through the outage. A missing or unreadable
     * file seeds nothing.
     *
     * @return the VMs the file names at any location: the VMs the earlier life measured
     */
    static java.util.Set<String> seedRemembered(
            RpoTracker tracker, java.nio.file.Path file, java.util.Set<String> locations) {
        if (!java.nio.file.Files.isRegularFile(file)) {
            return java.util.Set.of();
        }
        try {
            Map<String, Map<String, String>> newest = JSON.readValue(
                    file.toFile(),
                    new com.fasterxml.jackson.core.type.TypeReference<Map<String, Map<String, String>>>() {});
            java.util.Set<String> named = new java.util.TreeSet<>();
            newest.forEach((location, vms) -> {
                named.addAll(vms.keySet());
                if (locations.contains(location)) {
                    vms.forEach((vm, at) -> tracker.record(vm, location, java.time.Instant.parse(at)));
                }
            });
            return named;
        } catch (java.io.IOException | RuntimeException e) { // a damaged file only costs the seed
            org.slf4j.LoggerFactory.getLogger(RpoSources.class)
                    .warn("cannot read the remembered RPO state {}: {}", file, e.getMessage());
            return java.util.Set.of();
        }
    }

    private static final com.fasterxml.jackson.databind.ObjectMapper JSON =
            new com.fasterxml.jackson.databind.ObjectMapper();

    private static void seed(RpoTracker tracker, String location, Repository repo) {
        for (String vm : repo.vms()) {
            repo.latest(vm).map(Manifest::capturedAt).ifPresent(at -> tracker.record(vm, location, at));
        }
    }
}
