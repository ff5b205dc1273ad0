namespace Qwen3.Net.Benchmarks.Checkpoints;

/// <summary>
/// Where checkpoint writers get weight values from: synthesized ones, or an existing checkpoint being converted.
/// Random access by element lets writers stream any tensor in bounded chunks and fill chunks in parallel.
/// </summary>
public interface IWeightSource
{
    /// <summary>Copies elements <c>[start, start + destination.Length)</c> of the row-major tensor as raw BF16 bits.</summary>
    void ReadBf16(CheckpointTensor tensor, long start, Span<ushort> destination);
}
