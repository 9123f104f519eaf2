/**
 * Fine-tuning data: JSON Lines examples (the seed's {@code src}/{@code tgt}, single or multi-turn,
 * and Alpaca's {@code instruction}/{@code input}/{@code output}), tokenised as the seed does for
 * causal language models, shuffled with a seed and batched with padding.
 */
package org.peft4j.train.data;
