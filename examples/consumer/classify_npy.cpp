// Loads a model, runs the images of a .npy file (uint8 [N, H, W, C]) and prints each image's
// top-1 class and its int32 logits: the smallest complete use of the installed library.
#include <cstdio>
#include <cstring>

#include "halibit/error.h"
#include "halibit/npy.h"
#include "halibit/session.h"

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: classify_npy MODEL IMAGES.npy\n");
        return 2;
    }
    try {
        auto model = halibit::Model::load(argv[1]);
        const halibit::NpyArray images = halibit::read_npy(argv[2]);
        if (images.dtype != "u1" || images.shape.size() != 4) throw halibit::Error(std::string(argv[2]) + ": expected uint8 [N, H, W, C]");
        halibit::Session session(model);
        const int batch = int(images.shape[0]), classes = model->output().c;
        const std::vector<int32_t> logits = session.run(images.data.data(), batch);
        for (int n = 0; n < batch; n++) {
            const int32_t* row = &logits[size_t(n) * classes];
            int best = 0;
            for (int c = 1; c < classes; c++) best = row[c] > row[best] ? c : best;
            std::printf("image %d: class %d, logits", n, best);
            for (int c = 0; c < classes; c++) std::printf(" %d", row[c]);
            std::printf("\n");
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "classify_npy: %s\n", e.what());
        return 1;
    }
    return 0;
}
