/* A PKCS#11 module for tests: every call goes to the module HANG_PKCS11_MODULE names, except
 * C_Sign, which never returns. With HANG_SOFTHSM2_CONF set, SoftHSM reads that configuration
 * instead of SOFTHSM2_CONF's, so the wrapped tokens differ from those of a SoftHSM loaded beside
 * it in another process. */
#include <dlfcn.h>
#include <stdlib.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

static CK_FUNCTION_LIST wrapped;

static CK_RV never_returns(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG length,
                           CK_BYTE_PTR signature, CK_ULONG_PTR signature_length) {
    (void)session; (void)data; (void)length; (void)signature; (void)signature_length;
    for (;;)
        pause();
    return CKR_GENERAL_ERROR;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    const char *real = getenv("HANG_PKCS11_MODULE");
    const char *conf = getenv("HANG_SOFTHSM2_CONF");
    if (real == NULL || list == NULL)
        return CKR_GENERAL_ERROR;
    if (conf != NULL)
        setenv("SOFTHSM2_CONF", conf, 1);
    void *library = dlopen(real, RTLD_NOW | RTLD_LOCAL);
    if (library == NULL)
        return CKR_GENERAL_ERROR;
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(library, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR inner = NULL;
    if (get == NULL || get(&inner) != CKR_OK || inner == NULL)
        return CKR_GENERAL_ERROR;
    wrapped = *inner;
    wrapped.C_Sign = never_returns;
    *list = &wrapped;
    return CKR_OK;
}
