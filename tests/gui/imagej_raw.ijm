// Import a plain volume with File > Import > Raw and print what ImageJ measured.
// Argument: path|type|width|height|slices|png|voxels
//   type:   an ImageJ raw type ("8-bit", "32-bit Unsigned", ...)
//   png:    where to save the middle slice as PNG ("-" for nowhere)
//   voxels: x,y,z;x,y,z;... (0-based) whose values are printed
// Output lines (one "key=value" each): stats, hist (8-bit only: the whole stack's
// 256-bin histogram), voxel.
args = split(getArgument(), "|");
path = args[0]; type = args[1];
width = args[2]; height = args[3]; slices = args[4];
png = args[5]; voxels = args[6];
setBatchMode(true);
run("Raw...", "open=[" + path + "] image=[" + type + "] width=" + width + " height=" + height
    + " number=" + slices + " little-endian");
print("opened=" + getWidth() + "x" + getHeight() + "x" + nSlices + " bitDepth=" + bitDepth());
Stack.getStatistics(count, mean, min, max, std);
print("stats=" + count + "," + d2s(mean, 9) + "," + d2s(min, 0) + "," + d2s(max, 0));
if (bitDepth() == 8) {
    total = newArray(256);
    for (s = 1; s <= nSlices; s++) {
        setSlice(s);
        getHistogram(values, counts, 256);
        for (i = 0; i < 256; i++) total[i] += counts[i];
    }
    line = "" + total[0];
    for (i = 1; i < 256; i++) line = line + "," + total[i];
    print("hist=" + line);
}
points = split(voxels, ";");
for (i = 0; i < points.length; i++) {
    p = split(points[i], ",");
    setSlice(parseInt(p[2]) + 1);
    print("voxel=" + points[i] + "," + d2s(getPixel(parseInt(p[0]), parseInt(p[1])), 0));
}
if (png != "-") {
    setSlice(floor(nSlices / 2) + 1);
    run("Duplicate...", "title=slice");
    saveAs("PNG", png);
}
