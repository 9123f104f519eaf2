package org.peft4j.core;

import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.regex.Pattern;

/**
 * The names of several adapters on one model, as Hugging Face PEFT names them, and the directory
 * layout their save takes: the {@link #DEFAULT} adapter at the root of the directory, every other
 * in a subfolder named after it, each with its own config and weights.
 *
 * <p>A name is a subfolder name, so it is made of letters, digits, {@code _ . -}, does not start
 * with {@code .} (no {@code ..}, no hidden folder), and is neither {@link #BASE} nor an adapter
 * file's name nor a training run's {@code checkpoint-<step>}, which sit beside the saved default
 * adapter.
 */
public final class AdapterNames {

    /** The name of the adapter a model is wrapped with. */
    public static final String DEFAULT = "default";

    /** Hugging Face's name for "no adapter" in a mixed batch: the row runs on the base model. */
    public static final String BASE = "__base__";

    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_.-]+");
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-\\d+");
    private static final ObjectMapper JSON = new ObjectMapper();

    private AdapterNames() {}

    /**
     * Says why a name cannot name an adapter (and its save's subfolder).
     *
     * @param name a proposed name
     * @return the reason, to follow the quoted name in a message, or null when the name is fine
     */
    public static String problem(String name) {
        if (name == null || name.isEmpty()) {
            return "is empty; give a name of letters, digits, _, . and -";
        }
        if (!NAME.matcher(name).matches() || name.startsWith(".")) {
            return "has characters other than letters, digits, _, . and - (or starts with .),"
                    + " which a subfolder of a save cannot take; rename it";
        }
        if (BASE.equals(name)) {
            return "is reserved (Hugging Face's name for the base model); choose another";
        }
        if (PeftModel.isAdapterFile(name) || CHECKPOINT.matcher(name).matches()) {
            return "is the name of an adapter file or a training checkpoint beside the saved"
                    + " default adapter; choose another";
        }
        return null;
    }

    /**
     * Refuses a name that {@link #problem} finds fault with.
     *
     * @param name a proposed name
     * @throws IllegalArgumentException naming the name and what is wrong with it
     */
    public static void check(String name) {
        String problem = problem(name);
        if (problem != null) {
            throw new IllegalArgumentException("the adapter name \"" + name + "\" " + problem);
        }
    }

    /**
     * Lists the named adapters a save holds beside its default adapter: the immediate subfolders
     * whose name is a valid adapter name other than {@link #DEFAULT} and that hold a config of
     * the given method. Training checkpoints and hidden folders are never among them.
     *
     * @param dir the saved directory
     * @param seedConfigFile the method's own config file name (the seed's, such as {@code
     *     lora_config.json}), which marks a folder as the method's
     * @param peftType the {@code peft_type} an {@code adapter_config.json} of the method names; a
     *     file that names none, or cannot be parsed, counts, so that loading it names its fault
     * @return the names, sorted
     * @throws IOException if the directory cannot be listed
     */
    public static List<String> subfolders(Path dir, String seedConfigFile, String peftType)
            throws IOException {
        List<String> names = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return names;
        }
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
            for (Path entry : entries) {
                String name = entry.getFileName().toString();
                if (Files.isDirectory(entry)
                        && problem(name) == null
                        && !DEFAULT.equals(name)
                        && holdsConfig(entry, seedConfigFile, peftType)) {
                    names.add(name);
                }
            }
        }
        Collections.sort(names);
        return names;
    }

    /** Reads one named adapter of a saved set from its subfolder. */
    @FunctionalInterface
    public interface SubfolderLoader {

        /**
         * Reads the adapter.
         *
         * @param subfolder the adapter's folder
         * @param name the adapter's name, the folder's
         * @throws IOException if a file cannot be read
         */
        void load(Path subfolder, String name) throws IOException;
    }

    /**
     * Reads one named adapter of a saved set, so that a failure names the adapter and its folder:
     * its message is prefixed with {@code the <kind> "<name>" in <subfolder>: }, its type kept.
     *
     * @param kind what the method calls an adapter in messages ({@code adapter}, {@code prefix})
     * @param dir the saved set's directory
     * @param name the adapter, one of {@link #subfolders}
     * @param loader what reads it
     * @throws IOException if a file cannot be read
     */
    public static void loadSubfolder(String kind, Path dir, String name, SubfolderLoader loader)
            throws IOException {
        Path subfolder = dir.resolve(name);
        String where = "the " + kind + " \"" + name + "\" in " + subfolder + ": ";
        try {
            loader.load(subfolder, name);
        } catch (IOException e) {
            throw new IOException(where + e.getMessage(), e);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(where + e.getMessage(), e);
        } catch (IllegalStateException e) {
            throw new IllegalStateException(where + e.getMessage(), e);
        }
    }

    private static boolean holdsConfig(Path dir, String seedConfigFile, String peftType) {
        if (Files.isRegularFile(dir.resolve(seedConfigFile))) {
            return true;
        }
        Path file = dir.resolve(PeftConfig.CONFIG_FILE);
        if (!Files.isRegularFile(file)) {
            return false;
        }
        try {
            String type = JSON.readTree(file.toFile()).path("peft_type").asText("");
            return type.isEmpty() || peftType.equals(type);
        } catch (IOException e) {
            return true;
        }
    }
}
