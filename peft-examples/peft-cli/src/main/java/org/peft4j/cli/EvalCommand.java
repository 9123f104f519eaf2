package org.peft4j.cli;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.nn.Block;

import org.peft4j.models.llama.LlamaForCausalLM;
import org.peft4j.models.tokenizer.LlamaTokenizer;
import org.peft4j.train.data.Example;
import org.peft4j.train.data.ExampleEncoder;
import org.peft4j.train.Evaluator;
import org.peft4j.train.Metrics;

import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;
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

    @Mixin DataOptions dataOptions;

    @Option(names = "--data", required = true, description = "JSON Lines data.")
    Path data;

    @Option(
            names = "--batch-size",
            defaultValue = "8",
            converter = Ranges.AtLeast1.class,
            description = "Examples per forward pass (default: ${DEFAULT-VALUE}).")
    int batchSize;

    /** Creates the command; picocli calls this. */
    public EvalCommand() {}

    /** {@inheritDoc} */
    @Override
    public Integer call() throws Exception {
        Device on = device.resolve(); // before any file is read
        List<Example> examples = dataOptions.read(data); // before the weights: fails fast
        try (NDManager manager = NDManager.newBaseManager(on);
                LlamaTokenizer tokens = model.openTokenizer()) {
            LlamaForCausalLM llama = model.load(manager);
            Block block = adapter.apply(llama);
            ExampleEncoder encoder =
                    dataOptions.encoder(
                            tokens,
                            block,
                            llama,
                            model.path(),
                            model.tokenizerDirectory(),
                            examples);
            Metrics metrics =
                    Evaluator.evaluate(
                            block, dataOptions.encode(encoder, examples, data), batchSize, manager);
            System.out.println(metrics);
        }
        return 0;
    }
}
