using System.Runtime.CompilerServices;
using System.Numerics.Tensors;
using Qwen3.Net.Kernels.Quantized;
using Qwen3.Net.Loading;
using Qwen3.Net.Loading.Gguf;

namespace Qwen3.Net.Kernels;

/// <summary>
/// A row-major [Rows, Columns] weight matrix read in place from the memory map, in its stored element type.
/// Kernels widen BF16/F16 to float32 on the fly; the weights are copied only into <see cref="Panels"/>, and only when
/// <see cref="Qwen3ModelOptions.PackedWeights"/> asks for it.
/// </summary>
internal readonly unsafe struct WeightMatrix
{
    public readonly byte* Data;
    public readonly TensorDType Type;
    public readonly int Rows;
    public readonly int Columns;

    /// <summary>Bytes from one row to the next; stored, since the kernels ask for it at every row.</summary>
    public readonly long RowStride;

    /// <summary>Whether the matrix is in a ggml block format (<see cref="Quantized"/>), multiplied by the int8 kernels.</summary>
    public readonly bool IsQuantized;

    /// <summary>
    /// The matrix also kept in the prompt tile's layout (<see cref="MatMul.PackPanels"/>, or for Q8_0
    /// <see cref="QuantizedMatMul.PackPanels"/>), panels of <see cref="PanelRows"/> rows; null where it is read from
    /// the map only.
    /// </summary>
    public readonly byte* Panels;

    /// <summary>Rows per panel of <see cref="Panels"/>: the prompt tile's panel on the path they were packed for; 0 without.</summary>
    public readonly int PanelRows;

    public WeightMatrix(byte* data, TensorDType type, int rows, int columns)
    {
        Data = data;
        Type = type;
        Rows = rows;
        Columns = columns;
        GgmlType? block = QuantizedFormat.FromTensorType(type);
        IsQuantized = block is not null;
        RowStride = block is { } b ? GgmlTypes.RowBytes(b, columns) : (long)columns * (type == TensorDType.F32 ? 4 : 2);
    }

    private WeightMatrix(in WeightMatrix w, byte* panels, int panelRows)
    {
        this = w;
        Panels = panels;
        PanelRows = panelRows;
    }

    /// <summary>This matrix with its weights also read from <paramref name="panels"/>, packed in panels of <paramref name="panelRows"/> rows.</summary>
    public WeightMatrix WithPanels(byte* panels, int panelRows) => new(this, panels, panelRows);

    /// <summary>A 2-D tensor as a matrix; a 1-D tensor as a single row.</summary>
    public static WeightMatrix From(in TensorView view) => view.Shape.Length == 1
        ? new(view.Data, view.DType, 1, view.Shape[0])
        : new(view.Data, view.DType, view.Shape[0], view.Shape[1]);

    public int ElementSize => Type == TensorDType.F32 ? 4 : 2;

    /// <summary>The same matrix as the int8 kernels take it; only for <see cref="IsQuantized"/> matrices.</summary>
    public QuantizedMatrix Quantized => new QuantizedMatrix(
        Data, QuantizedFormat.FromTensorType(Type) ?? throw new InvalidOperationException($"{Type} is not a block format."), Rows, Columns).WithPanels(Panels);

    public byte* Row(int row) => Data + row * RowStride;

    /// <summary>Widens one row to float32 (used for embedding lookup and by scalar references).</summary>
    public void ReadRow(int row, Span<float> destination)
    {
        if (IsQuantized)
        {
            Quantized.ReadRow(row, destination);
            return;
        }

        byte* p = Row(row);
        switch (Type)
        {
            case TensorDType.F32:
                new ReadOnlySpan<float>(p, Columns).CopyTo(destination);
                break;
            case TensorDType.F16:
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(p, Columns), destination);
                break;
            default:
                BFloat16.ToSingle(new ReadOnlySpan<ushort>(p, Columns), destination);
                break;
        }
    }

    /// <summary>One element widened to float32; for scalar reference kernels only.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float At(int row, int column)
    {
        byte* p = Row(row);
        return Type switch
        {
            TensorDType.F32 => ((float*)p)[column],
            TensorDType.F16 => (float)((Half*)p)[column],
            _ => BFloat16.ToSingle(((ushort*)p)[column]),
        };
    }
}
