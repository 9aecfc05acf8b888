// The stb_image / stb_image_write implementations for the fuzz targets only (the normal
// build links Debian's libstb instead).
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
