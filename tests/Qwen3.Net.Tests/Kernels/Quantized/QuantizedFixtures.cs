using System.Runtime.InteropServices;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Tests.Kernels.Quantized;

/// <summary>ggml's bytes and floats in tests/fixtures/quantized (made by make-fixtures.c there, against libggml).</summary>
internal static class QuantizedFixtures
{
    public const int Rows = 4;
    public const int Columns = 512;

    public static readonly GgmlType[] WeightTypes = [GgmlType.Q8_0, GgmlType.Q4_0, GgmlType.Q5_0, GgmlType.Q4_K, GgmlType.Q5_K, GgmlType.Q6_K, GgmlType.Q3_K, GgmlType.Q2_K];

    public static string Folder => Path.Combine(Fixtures.Root, "tests", "fixtures", "quantized");

    public static byte[] Bytes(string name) => File.ReadAllBytes(Path.Combine(Folder, name));

    public static float[] Floats(string name) => MemoryMarshal.Cast<byte, float>(Bytes(name)).ToArray();

    public static string Name(GgmlType type) => type.ToString().ToLowerInvariant();

    /// <summary>make-fixtures.c's known(i): floats exact in binary, so both sides compute the same values.</summary>
    public static float Known(int i) => ((int)((uint)(i * 2654435761u) >> 16) - 32768) / 4096.0f;
}
