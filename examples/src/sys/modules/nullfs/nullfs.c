/* The nullfs kernel module (sample): a shared object the kernel would load. */
const char nullfs_module_name[] = "nullfs";
int nullfs_module_version = 1;
