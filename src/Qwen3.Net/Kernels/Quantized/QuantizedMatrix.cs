using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels.Quantized;

/// <summary>
/// A row-major [Rows, Columns] weight matrix in a ggml block format, read in place from the memory map: each row is
/// Columns / block-size blocks, <see cref="RowStride"/> bytes. Nothing is dequantized into memory.
/// </summary>
internal readonly unsafe struct QuantizedMatrix
{
    public readonly byte* Data;
    public readonly GgmlType Type;
    public readonly int Rows;
    public readonly int Columns;
    public readonly long RowStride;

    /// <summary>The matrix also kept unpacked in the prompt tile's panels (<see cref="QuantizedMatMul.PackPanels"/>); null where it is read from the map only.</summary>
    public readonly byte* Panels;

    /// <exception cref="ArgumentException">The type is not a weight format, or the columns do not fill whole blocks.</exception>
    public QuantizedMatrix(byte* data, GgmlType type, int rows, int columns)
    {
        if (!QuantizedFormat.IsWeightType(type))
        {
            throw new ArgumentException($"{type} is not a quantized weight format the kernels multiply.", nameof(type));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(rows, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        Data = data;
        Type = type;
        Rows = rows;
        Columns = columns;
        RowStride = GgmlTypes.RowBytes(type, columns);
    }

    private QuantizedMatrix(in QuantizedMatrix w, byte* panels)
    {
        this = w;
        Panels = panels;
    }

    /// <summary>This matrix with its panels kept at <paramref name="panels"/>.</summary>
    public QuantizedMatrix WithPanels(byte* panels) => new(this, panels);

    /// <summary>Bytes the matrix occupies in the map: what a loader checks against the tensor's extent.</summary>
    public long ByteLength => Rows * RowStride;

    public byte* Row(int row) => Data + row * RowStride;

    /// <summary>Dequantizes one row to float32, exactly as ggml does (embedding lookup, scalar references).</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)row, (uint)Rows, nameof(row));
        QuantizedReference.Dequantize(Type, new ReadOnlySpan<byte>(Row(row), (int)RowStride), destination[..Columns]);
    }
}
