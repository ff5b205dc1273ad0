namespace Qwen3.Net;

/// <summary>
/// GPT-2's bytes-to-unicode table: every byte gets a printable character, so byte strings can be stored as vocabulary text.
/// Printable Latin-1 bytes keep their own character; the other 68 bytes take U+0100 onwards, in byte order.
/// </summary>
internal static class ByteLevelAlphabet
{
    private const int NoByte = -1;

    private static readonly short[] CharToByteTable = BuildCharToByte();

    /// <summary>The vocabulary character that stands for <paramref name="b"/>.</summary>
    public static char ByteToChar(byte b) => (char)Array.IndexOf(CharToByteTable, (short)b);

    /// <summary>The byte a vocabulary character stands for, or -1 when the character is not in the alphabet.</summary>
    public static int CharToByte(char c) => c < CharToByteTable.Length ? CharToByteTable[c] : NoByte;

    private static short[] BuildCharToByte()
    {
        var table = new short[256 + 68];
        Array.Fill(table, (short)NoByte);
        int next = 256;
        for (int b = 0; b < 256; b++)
        {
            bool keepsOwnChar = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            table[keepsOwnChar ? b : next++] = (short)b;
        }

        return table;
    }
}
