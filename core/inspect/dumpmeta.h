// dumpmeta.h: what the axes of a dump mean, for readers that never saw rwkvscope (h5py +
// xarray, Julia's HDF5.jl, MATLAB): HDF5 dimension scales (H5DS) and units/description
// attributes. Used by the dump writer before SWMR writing starts (docs/dump-format.md).
//   /dims/channel      int64 [C]       c                 scale "channel"
//   /dims/ffn_channel  int64 [F]       f                 scale "ffn_channel" (ffn_k)
//   /dims/token        int64 [V]       token id          scale "token" (logits)
//   /dims/head         int64 [C]       c / head_size     scale "head" (RWKV-5/7, beside channel)
//   /dims/state_{head,value,key} int64 [H*N*N]  (h, i, j) of each state_wkv column
//   /sequences/positions               is the row scale "position" of every tap
#ifndef RWKV_DUMPMETA_H
#define RWKV_DUMPMETA_H

#include "../compute/forward.h"

#include <hdf5.h>

// Makes /sequences/positions (dataset positions of file) the row scale; 0 or -1.
int rwkv_dumpmeta_rows(hid_t positions);
// Labels the axes of tap dataset dset ("row", and "channel", "ffn_channel", "token" or
// "state_index"), attaches the scales (creating those under /dims on first use) and writes
// its description (and units) attributes. 0 or -1.
int rwkv_dumpmeta_tap(hid_t file, hid_t dset, hid_t positions, rwkv_tap tap, rwkv_config cfg);
// The same for the [C] vector /params/blocks/<l>/<name>, or a [C, C] matrix (name receptance,
// key, value).
int rwkv_dumpmeta_param(hid_t file, hid_t dset, const char *name, rwkv_config cfg);
// A group creation list that tracks and indexes creation order, so that readers iterating
// by creation index see the layer groups 0, 1, ..., 10 in numeric order (H5Pclose it).
hid_t rwkv_dumpmeta_ordered_gcpl(void);

#endif
