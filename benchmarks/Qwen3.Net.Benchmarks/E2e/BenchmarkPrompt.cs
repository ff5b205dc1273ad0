namespace Qwen3.Net.Benchmarks.E2e;

/// <summary>
/// The prompt both engines get: fixed pseudo-random ids below the first special token, so no tokenizer is involved
/// and the same ids reach both engines. Prompts of one seed are prefixes of each other; different seeds share nothing.
/// </summary>
public static class BenchmarkPrompt
{
    private const int FirstSpecialTokenId = 151643;

    public static int[] Create(int length, ulong seed = 0x5EED_0F_BE_7C4)
    {
        var ids = new int[length];
        ulong state = seed;
        for (int i = 0; i < length; i++)
        {
            state += 0x9E3779B97F4A7C15UL;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            ids[i] = (int)(z % FirstSpecialTokenId);
        }
        return ids;
    }
}
