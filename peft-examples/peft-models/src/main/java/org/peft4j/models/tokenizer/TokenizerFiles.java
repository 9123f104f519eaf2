package org.peft4j.models.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** Picks the tokenizer implementation for a file, and finds the tokenizer file of a model. */
final class TokenizerFiles {

    /** The names looked for next to a model, the preferred first. */
    static final List<String> NAMES = List.of("tokenizer.json", "tokenizer.bin");

    private TokenizerFiles() {}

    /**
     * Loads a tokenizer: {@code *.json} as Hugging Face, anything else as llama2.c.
     *
     * @param file the tokenizer file
     * @return the tokenizer
     * @throws IOException if the file is missing (a {@link NoSuchFileException}), a directory, or
     *     cannot be read
     */
    static LlamaTokenizer load(Path file) throws IOException {
        if (!Files.exists(file)) {
            throw new NoSuchFileException(file.toString(), null, "no such tokenizer file");
        }
        if (Files.isDirectory(file)) {
            throw new IOException(
                    file + ": is a directory; pass the tokenizer file, or use findNextTo");
        }
        String name = file.getFileName().toString().toLowerCase(Locale.ROOT);
        return name.endsWith(".json")
                ? HuggingFaceLlamaTokenizer.load(file)
                : Llama2cTokenizer.load(file);
    }

    /**
     * Loads {@code tokenizer.json}, else {@code tokenizer.bin}, from a model's directory.
     *
     * @param modelDirOrFile the model directory, or a file in it
     * @return the tokenizer
     * @throws IOException if there is no tokenizer (a {@link NoSuchFileException} naming the
     *     directory and the names looked for) or it cannot be read
     */
    static LlamaTokenizer findNextTo(Path modelDirOrFile) throws IOException {
        if (!Files.exists(modelDirOrFile)) {
            throw new NoSuchFileException(modelDirOrFile.toString(), null, "no such model path");
        }
        Path dir = modelDirOrFile.toAbsolutePath();
        if (!Files.isDirectory(dir)) {
            dir = dir.getParent();
        }
        for (String name : NAMES) {
            Path file = dir.resolve(name);
            if (Files.isRegularFile(file)) {
                return load(file);
            }
        }
        String looked = "no tokenizer here, looked for " + String.join(" and ", NAMES);
        String fix = "put the model's tokenizer there or pass the tokenizer file";
        throw new NoSuchFileException(dir.toString(), null, looked + "; " + fix);
    }
}
