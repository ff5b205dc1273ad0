namespace Qwen3.Net;

/// <summary>
/// The GGUF file types <see cref="Qwen3Quantizer"/> writes, named and mixed as llama.cpp's <c>llama-quantize</c> names
/// them (docs/quantization.md). Norm weights stay float32 in every type.
/// </summary>
public enum QuantizationType
{
    /// <summary>Every matrix in Q8_0 (8.5 bits per weight): closest to the original, about half of BF16.</summary>
    Q8_0,

    /// <summary>Q4_K matrices (4.5 bits per weight), with Q6_K for the output head and for attn_v and ffn_down in some layers.</summary>
    Q4_K_M,

    /// <summary>Q5_K matrices (5.5 bits per weight), with Q6_K for the output head and for attn_v and ffn_down in some layers.</summary>
    Q5_K_M,

    /// <summary>Every matrix in Q6_K (6.5625 bits per weight).</summary>
    Q6_K,

    /// <summary>Q5_0 matrices (5.5 bits per weight: Q4_0's blocks of 32 with a fifth bit), with Q6_K for the output head; one of the types Qwen publishes its GGUF files in.</summary>
    Q5_0,

    /// <summary>
    /// Q3_K matrices (3.4375 bits per weight), with Q4_K for attn_output, attn_v and ffn_down (Q5_K for the first attn_v
    /// pair and the first sixteenth of ffn_down) and Q6_K for the output head: the smallest file, at the largest loss.
    /// </summary>
    Q3_K_M,

    /// <summary>
    /// Q2_K matrices (2.625 bits per weight), with Q3_K for attn_output, ffn_down and attn_v (Q4_K for attn_v where four
    /// or more query heads share each key/value head: 4B and up) and Q6_K for the output head: for the largest models
    /// on the least memory, at a large loss.
    /// </summary>
    Q2_K,

    /// <summary>Every matrix in Q3_K (3.4375 bits per weight) but the output head (Q6_K): smaller than Q3_K_M, at more loss.</summary>
    Q3_K_S,

    /// <summary>Q3_K matrices with Q5_K for attn_v, attn_output and ffn_down and Q6_K for the output head: the largest of the Q3_K files.</summary>
    Q3_K_L,

    /// <summary>Q4_K matrices with Q5_K for attn_v in the first four layers and ffn_down in the first eighth, Q6_K for the output head.</summary>
    Q4_K_S,

    /// <summary>Every matrix in Q5_K (5.5 bits per weight) but the output head (Q6_K).</summary>
    Q5_K_S,
}
