package org.peft4j.cli;

import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;

import org.peft4j.train.data.ExampleEncoder;
import org.peft4j.train.data.JsonlExamples;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.train.Evaluator;
import org.peft4j.train.Metrics;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code peft4j eval}: loss, perplexity and token accuracy of a model (with an optional adapter)
 * over the target tokens of a JSON Lines data set, tokenised as for fine-tuning.
 */
@Command(
        name = "eval",
        mixinStandardHelpOptions = true,
        description = "Print loss, perplexity and token accuracy on a data set.")
public final class EvalCommand implements Callable<Integer> {

    @Mixin ModelOptions model;

    @Mixin AdapterOption adapter;

    @Mixin DeviceOption device;

    @Option(names = "--data", required = true, description = "JSON Lines data.")
    Path data;

    @Option(
            names = "--batch-size",
            defaultValue = "8",
            description = "Examples per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    @Option(
            names = "--src-length",
            defaultValue = "1024",
            description = "Most source tokens (default: ${DEFAULT-VALUE}).")
    int srcLength;

    @Option(
            names = "--max-length",
            defaultValue = "2048",
            description = "Most tokens (default: ${DEFAULT-VALUE}).")
    int maxLength;

    @Option(names = "--skip-malformed", description = "Skip and count malformed lines.")
    boolean skipMalformed;

    /** Creates the command; picocli calls this. */
    public EvalCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        try (NDManager manager = NDManager.newBaseManager(device.resolve());
                LlamaTokenizer tokens = model.openTokenizer()) {
            Block block = adapter.apply(model.load(manager));
            ExampleEncoder encoder = new ExampleEncoder(tokens, srcLength, maxLength);
            Metrics metrics =
                    Evaluator.evaluate(
                            block,
                            FinetuneCommand.encode(
                                    encoder, JsonlExamples.read(data, skipMalformed)),
                            batchSize,
                            manager);
            System.out.println(metrics);
        }
        return 0;
    }
}
